// The HTTP client against our server (keep-alive reuse, redirects, chunked bodies from a raw peer, cancellation
// that leaves nothing half-read in the pool) and against Python's http.server (started here, on a free port).
#include "tulipa/http/client.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "loop_helpers.hpp"
#include "support/net_util.hpp"
#include "tulipa/cancel.hpp"
#include "tulipa/http/server.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/process.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"

namespace tulipa::http {
namespace {

struct HttpClientTest : ::testing::Test {
  EventLoop loop;
  Server server;
  Event gate;
  std::string base;
  std::vector<std::string> logs;  // the server's error lines: none expected

  void SetUp() override {
    Router router;
    router.get("/", [](Request&) { return Response(200, "Hello, World!"); });
    router.post("/echo", [](Request& r) { return Response(200, std::string(r.body())); });
    router.get("/redirect/{n}", [](Request& r) {
      const int n = std::stoi(std::string(r.param("n")));
      Response resp(302);
      resp.add_header("Location", n > 0 ? "/redirect/" + std::to_string(n - 1) : "/");
      return resp;
    });
    router.post("/see-other", [](Request&) {
      Response resp(303);
      resp.add_header("Location", "/method");
      return resp;
    });
    router.get("/method",
               [](Request& r) { return Response(200, std::string(r.method()) + " " + std::string(r.body())); });
    router.get("/slow", [this](Request&) -> Coro<Response> {
      co_await gate.wait();
      co_return Response(200, "slow");
    });
    loop.set_log_handler([this](std::string_view line) { logs.emplace_back(line); });
    server = serve(loop, std::move(router), "127.0.0.1", 0);
    base = "http://127.0.0.1:" + std::to_string(server.sockets().at(0).port());
  }
  void TearDown() override {
    for (const std::string& l : logs) ADD_FAILURE() << l;
    server = Server();
    test::finish_loop(loop);
  }
  template <class F>
  auto run(F f) {
    return test::run_task(loop, std::move(f)).result();
  }
};

TEST_F(HttpClientTest, KeepAliveReusesPooledConnections) {
  Client client(loop);
  const std::string body = run([&]() -> Coro<std::string> {
    std::string all;
    for (int i = 0; i < 3; ++i) {
      ClientResponse r = co_await client.get(base + "/");
      all += r.body;
    }
    ClientResponse r = co_await client.request("POST", base + "/echo", "payload");
    all += r.body;
    co_return all;
  });
  EXPECT_EQ(body, "Hello, World!Hello, World!Hello, World!payload");
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(client.idle_connections(), 1u);
  EXPECT_EQ(server.active_connections(), 1u);
}

TEST_F(HttpClientTest, FollowsRedirectsUpToTheLimit) {
  ClientOptions options;
  options.max_redirects = 3;
  Client client(loop, options);
  ClientResponse r = run([&]() -> Coro<ClientResponse> { co_return co_await client.get(base + "/redirect/2"); });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Hello, World!");
  EXPECT_EQ(r.url, base + "/");
  r = run([&]() -> Coro<ClientResponse> { co_return co_await client.get(base + "/redirect/9"); });
  EXPECT_EQ(r.status, 302);  // the fourth redirect is returned, not followed
  r = run([&]() -> Coro<ClientResponse> { co_return co_await client.request("POST", base + "/see-other", "x"); });
  EXPECT_EQ(r.body, "GET ");
}

TEST_F(HttpClientTest, CancellationNeverPoolsAHalfReadConnection) {
  Client client(loop);
  auto task = create_task(loop, [&]() -> Coro<void> { co_await client.get(base + "/slow"); });
  ASSERT_TRUE(test::run_until(loop, [&] { return server.active_connections() == 1; }));
  for (int i = 0; i < 5; ++i) loop.run_once();  // the request reaches the handler
  task.cancel();
  ASSERT_TRUE(test::run_until(loop, [&] { return task.done(); }));
  EXPECT_TRUE(task.cancelled());
  EXPECT_EQ(client.idle_connections(), 0u);
  gate.set();
  const ClientResponse r = run([&]() -> Coro<ClientResponse> { co_return co_await client.get(base + "/"); });
  EXPECT_EQ(r.body, "Hello, World!");
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST_F(HttpClientTest, AConnectionTheServerClosedIsReplaced) {
  ServerConfig config;
  config.keep_alive_timeout = std::chrono::milliseconds(50);
  config.sweep = std::chrono::milliseconds(10);
  Router router;
  router.get("/", [](Request&) { return Response(200, "ok"); });
  Server short_lived = serve(loop, std::move(router), "127.0.0.1", 0, config);
  const std::string url = "http://127.0.0.1:" + std::to_string(short_lived.sockets().at(0).port()) + "/";
  Client client(loop);
  EXPECT_EQ(run([&]() -> Coro<std::string> { co_return (co_await client.get(url)).body; }), "ok");
  ASSERT_TRUE(test::run_until(loop, [&] { return short_lived.active_connections() == 0; }));
  EXPECT_EQ(run([&]() -> Coro<std::string> { co_return (co_await client.get(url)).body; }), "ok");
  EXPECT_EQ(client.connections_opened(), 2u);
}

// A raw peer that answers with a chunked body, to check the client's decoding.
TEST_F(HttpClientTest, DecodesChunkedResponses) {
  tulipa::Server raw = start_server(
      loop,
      [](StreamReader reader, StreamWriter writer) -> Coro<void> {
        co_await reader.readuntil("\r\n\r\n");
        writer.write(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n");
        co_await writer.drain();
        co_await reader.read();  // until the client goes
      },
      "127.0.0.1", 0);
  Client client(loop);
  const std::string url = "http://127.0.0.1:" + std::to_string(raw.sockets().at(0).port()) + "/";
  EXPECT_EQ(run([&]() -> Coro<std::string> { co_return (co_await client.get(url)).body; }), "hello, world");
  EXPECT_EQ(client.idle_connections(), 1u);
  client.close_idle();
}

// A peer that accepts connections and never answers (the kernel completes the TCP handshake for it).
tulipa::Server silent_server(EventLoop& loop) {
  return create_server(loop, [] { return std::make_unique<Protocol>(); }, "127.0.0.1", 0);
}

TEST_F(HttpClientTest, TheConnectTimeoutCoversTheTlsHandshake) {
  tulipa::Server silent = silent_server(loop);
  ClientOptions options;
  options.connect_timeout = std::chrono::milliseconds(100);
  Client client(loop, options);
  const std::string url = "https://127.0.0.1:" + std::to_string(silent.sockets().at(0).port()) + "/";
  auto task = test::run_task(loop, [&]() -> Coro<ClientResponse> { co_return co_await client.get(url); });
  EXPECT_THROW(task.result(), TimeoutError);
  EXPECT_EQ(client.idle_connections(), 0u);
}

TEST_F(HttpClientTest, TheTotalTimeoutEndsACallThatGetsNoAnswer) {
  tulipa::Server silent = silent_server(loop);
  ClientOptions options;
  options.total_timeout = std::chrono::milliseconds(100);
  Client client(loop, options);
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.sockets().at(0).port()) + "/";
  auto task = test::run_task(loop, [&]() -> Coro<ClientResponse> { co_return co_await client.get(url); });
  EXPECT_THROW(task.result(), TimeoutError);
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(client.idle_connections(), 0u);
}

// A peer that answers the first request of each connection (keep-alive), then meets the second one as a server
// whose idle timeout fired just as it arrived: "/close" closes without a byte, "/partial" sends part of a head.
struct StalePeer {
  tulipa::Server server;
  int connections = 0;
  explicit StalePeer(EventLoop& loop) {
    server = start_server(
        loop,
        [this](StreamReader reader, StreamWriter writer) -> Coro<void> {
          const int n = ++connections;
          co_await reader.readuntil("\r\n\r\n");
          const std::string answer = "conn " + std::to_string(n);
          writer.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(answer.size()) + "\r\n\r\n" + answer);
          Bytes second = co_await reader.readuntil("\r\n\r\n");
          if (second.view().find(" /partial ") != std::string_view::npos) writer.write("HTTP/1.1 2");
          co_await writer.drain();
          writer.close();
        },
        "127.0.0.1", 0);
  }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(server.sockets().at(0).port()) + std::string(path);
  }
};

TEST_F(HttpClientTest, AStaleConnectionIsRetriedForAnIdempotentRequestThatGotNothing) {
  StalePeer peer(loop);
  Client client(loop);
  const std::string out = run([&]() -> Coro<std::string> {
    ClientResponse first = co_await client.get(peer.url("/"));
    ClientResponse second = co_await client.get(peer.url("/close"));  // sent on the pooled connection: retried
    co_return first.body + ", " + second.body;
  });
  EXPECT_EQ(out, "conn 1, conn 2");
  EXPECT_EQ(client.connections_opened(), 2u);
  client.close_idle();
}

TEST_F(HttpClientTest, AStaleConnectionIsNotRetriedForAPost) {
  StalePeer peer(loop);
  Client client(loop);
  auto task = test::run_task(loop, [&]() -> Coro<std::string> {
    ClientResponse first = co_await client.request("POST", peer.url("/"), "x");
    EXPECT_EQ(first.body, "conn 1");
    ClientResponse second = co_await client.request("POST", peer.url("/close"), "x");
    co_return second.body;
  });
  EXPECT_THROW(task.result(), ProtocolError);
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(HttpClientTest, AStaleConnectionIsNotRetriedOnceResponseBytesArrived) {
  StalePeer peer(loop);
  Client client(loop);
  auto task = test::run_task(loop, [&]() -> Coro<std::string> {
    ClientResponse first = co_await client.get(peer.url("/"));
    EXPECT_EQ(first.body, "conn 1");
    ClientResponse second = co_await client.get(peer.url("/partial"));
    co_return second.body;
  });
  EXPECT_THROW(task.result(), ProtocolError);
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(HttpClientTest, AgainstPythonHttpServer) {
  char tmpl[] = "/tmp/tulipa-pyhttp-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::filesystem::path dir = tmpl;
  std::ofstream(dir / "hello.txt") << "from python";
  // Port 0 is not possible through http.server's command line: take a free port from the kernel.
  std::uint16_t port = 0;
  {
    tulipa::Server probe = create_server(loop, [] { return std::make_unique<Protocol>(); }, "127.0.0.1", 0);
    port = probe.sockets().at(0).port();
  }
  const std::string result = run([&]() -> Coro<std::string> {
    std::vector<std::string> argv{"python3", "-u",        "-m",          "http.server", std::to_string(port),
                                  "--bind",  "127.0.0.1", "--directory", dir.string()};
    Process py = spawn_process(loop, argv, {.std_out = Stdio::pipe(), .std_err = Stdio::devnull()});
    co_await py.std_out()->readline();  // "Serving HTTP on 127.0.0.1 port ...": it listens
    Client client(get_running_loop());
    ClientResponse r = co_await client.get("http://127.0.0.1:" + std::to_string(port) + "/hello.txt");
    ClientResponse missing = co_await client.get("http://127.0.0.1:" + std::to_string(port) + "/nope");
    co_return std::to_string(r.status) + " " + r.body + " " + std::to_string(missing.status);
  });
  EXPECT_EQ(result, "200 from python 404");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tulipa::http
