// WebSocket upgrades from a route of the HTTP server (websocket::Upgrader through Response::take_over), beside
// ordinary routes on the same server.
#include <gtest/gtest.h>

#include <string>

#include "tulipa/http/message.hpp"
#include "tulipa/http/router.hpp"
#include "tulipa/http/server.hpp"
#include "tulipa/http/websocket.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/task.hpp"
#include "ws_raw_client.hpp"

namespace tulipa::test {
namespace {

namespace ws = websocket;

struct Echo : ws::Handler {
  void on_message(ws::Connection& c, ws::Message&& m) override { c.send(m.data, m.text); }
};

TEST(WsRoute, UpgradeFromAnHttpRoute) {
  EventLoop loop;
  http::Router router;
  router.get("/", [](http::Request&) { return http::Response(200, "Hello, World!"); });
  ws::Upgrader chat([](const ws::UpgradeRequest&) { return std::make_unique<Echo>(); });
  router.get("/chat", chat);
  http::Server server = http::serve(loop, std::move(router), "127.0.0.1", 0);
  std::uint16_t port = server.sockets().at(0).port();
  run_until_complete(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    std::string base = "ws://127.0.0.1:" + std::to_string(port);
    ws::WebSocket c = co_await ws::connect(base + "/chat");
    EXPECT_FALSE(c.connection()->extensions().empty());
    for (int i = 0; i < 10; ++i) {
      std::string text = "over http " + std::to_string(i) + std::string(static_cast<std::size_t>(i) * 500, 'q');
      co_await c.send(text);
      EXPECT_EQ((co_await c.receive()).view(), text);
    }
    co_await c.close();
    // A plain request, then an upgrade on the same keep-alive connection.
    auto [r, w] = co_await open_connection(loop, "127.0.0.1", port);
    w.write(
        std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                         "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
    std::string first = (co_await r.readuntil(std::string_view("Hello, World!"))).str();
    EXPECT_NE(first.find("200"), std::string::npos);
    std::string second = (co_await r.readuntil(std::string_view("\r\n\r\n"))).str();
    EXPECT_NE(second.find("101 Switching Protocols"), std::string::npos) << second;
    EXPECT_NE(second.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos);
    RawWs upgraded(r, w);
    upgraded.close_frame(ws::close_code::normal);
    RawFrame echo = co_await upgraded.read();
    EXPECT_EQ(echo.close_code(), ws::close_code::normal);
    EXPECT_TRUE(co_await upgraded.closed());
    // A request on the WebSocket route that is not a handshake: refused.
    auto [r2, w2] = co_await open_connection(loop, "127.0.0.1", port);
    w2.write(std::string_view("GET /chat HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string refusal = (co_await r2.read()).str();
    EXPECT_NE(refusal.find("426"), std::string::npos) << refusal;
  }(loop, port));
  settle(loop);
}

}  // namespace
}  // namespace tulipa::test
