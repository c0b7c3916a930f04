// The WebSocket APIs end to end with our own client and server: the coroutine form (connect, receive, send,
// close, cancellation), fan-out with PreparedMessage, the slow-consumer policy, keepalive, subprotocols and the
// Origin check, compression memory, and the UTF-8 validator's incremental contract.
#include <gtest/gtest.h>

#include <string>

#include "support/test_certs.hpp"
#include "tulipa/http/websocket.hpp"
#include "tulipa/http/websocket_utf8.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"
#include "tulipa/tls.hpp"
#include "ws_raw_client.hpp"

namespace tulipa::test {
namespace {

namespace ws = websocket;

Coro<void> coro_echo(ws::WebSocket s, std::string target) {
  EXPECT_EQ(target, "/echo?x=1");
  try {
    for (;;) {
      ws::Message m = co_await s.receive();
      co_await s.send(m.data, m.text);
    }
  } catch (const ws::ConnectionClosed&) {
  }
}

// The server's connection ended (we saw its TCP close): its connection_lost and then its task's wake-up each take
// a loop pass; give them those passes so that no task is left pending when the test's loop goes.
Coro<void> finish_server_tasks() {
  for (int i = 0; i < 4; ++i) co_await sleep(Duration::zero());
}

std::string url(const Server& s, std::string path = "/echo?x=1") {
  return "ws://127.0.0.1:" + std::to_string(s.sockets().at(0).port()) + path;
}

TEST(WsApi, CoroutineServerAndClient) {
  EventLoop loop;
  ws::Options o;
  o.subprotocols = {"chat.v2", "chat.v1"};
  Server server = ws::serve(loop, ws::coroutine_handler(loop, coro_echo), "127.0.0.1", 0, o);
  run_until_complete(loop, [](std::string u) -> Coro<void> {
    ws::ConnectOptions co;
    co.options.subprotocols = {"chat.v1"};
    ws::WebSocket c = co_await ws::connect(u, co);
    EXPECT_EQ(c.subprotocol(), "chat.v1");
    EXPECT_FALSE(c.connection()->extensions().empty());  // deflate on by default on both sides
    for (int i = 0; i < 50; ++i) {
      std::string text = "message " + std::to_string(i) + std::string(static_cast<std::size_t>(i) * 97, 'z');
      co_await c.send(text);
      ws::Message m = co_await c.receive();
      EXPECT_TRUE(m.text);
      EXPECT_EQ(m.view(), text);
    }
    EXPECT_GT(c.connection()->compression_memory(), 0u);
    co_await c.close(ws::close_code::normal, "bye");
    EXPECT_EQ(c.close_code(), ws::close_code::normal);
    bool threw = false;
    try {
      co_await c.receive();
    } catch (const ws::ConnectionClosed& e) {
      threw = e.code() == ws::close_code::normal;
    }
    EXPECT_TRUE(threw);
  }(url(server)));
}

TEST(WsApi, CancelledReceiveLosesNoMessage) {
  EventLoop loop;
  Server server = ws::serve(loop, ws::coroutine_handler(loop, coro_echo), "127.0.0.1", 0);
  run_until_complete(loop, [](EventLoop& loop, std::string u) -> Coro<void> {
    ws::WebSocket c = co_await ws::connect(u);
    auto waiting = create_task(
        loop, [](ws::WebSocket& c) -> Coro<std::string> { co_return (co_await c.receive()).data.str(); }(c));
    co_await sleep(Duration::zero());
    waiting.cancel();
    bool cancelled = false;
    try {
      co_await waiting;
    } catch (const CancelledError&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    co_await c.send("still here");
    EXPECT_EQ((co_await c.receive()).view(), "still here");
    co_await c.close();
  }(loop, url(server)));
}

TEST(WsApi, HandshakeRefusals) {
  EventLoop loop;
  ws::Options o;
  o.check_origin = ws::same_origin({"https://good.example"});
  Server server = ws::serve(
      loop,
      [h = ws::coroutine_handler(loop, [](ws::WebSocket s, std::string) -> Coro<void> { co_await s.wait_closed(); })](
          const ws::UpgradeRequest& r) -> std::unique_ptr<ws::Handler> {
        if (r.target == "/private") return nullptr;
        return h(r);
      },
      "127.0.0.1", 0, o);
  run_until_complete(loop, [](std::string base) -> Coro<void> {
    auto attempt = [](std::string u, std::string origin) -> Coro<std::string> {
      ws::ConnectOptions co;
      co.origin = std::move(origin);
      try {
        ws::WebSocket c = co_await ws::connect(u, co);
        co_await c.close();
        co_return "ok";
      } catch (const ws::HandshakeError& e) {
        co_return e.what();
      }
    };
    EXPECT_EQ(co_await attempt(base + "/", ""), "ok");                      // no Origin: not a browser
    EXPECT_EQ(co_await attempt(base + "/", "https://good.example"), "ok");  // allowed
    EXPECT_NE((co_await attempt(base + "/", "https://evil.example")).find("403"), std::string::npos);
    EXPECT_NE((co_await attempt(base + "/private", "")).find("403"), std::string::npos);
  }("ws://127.0.0.1:" + std::to_string(server.sockets().at(0).port())));
}

TEST(WsApi, FanOutWithPreparedMessage) {
  EventLoop loop;
  std::vector<ws::Connection*> conns;
  struct Member : ws::Handler {
    std::vector<ws::Connection*>* conns;
    void on_open(ws::Connection& c) override { conns->push_back(&c); }
    void on_message(ws::Connection&, ws::Message&&) override {}
    void on_close(ws::Connection& c, std::uint16_t, std::string_view, std::exception_ptr) override {
      std::erase(*conns, &c);
    }
  };
  ws::Options o;
  o.deflate.window_bits = 10;
  Server server = ws::serve(
      loop,
      [&conns](const ws::UpgradeRequest&) {
        auto m = std::make_unique<Member>();
        m->conns = &conns;
        return m;
      },
      "127.0.0.1", 0, o);
  run_until_complete(loop, [](std::string u, std::vector<ws::Connection*>& conns) -> Coro<void> {
    std::vector<ws::WebSocket> clients;
    for (int i = 0; i < 6; ++i) {
      ws::ConnectOptions co;
      co.options.deflate.enabled = i % 2 == 0;
      co.options.deflate.inflate_window_bits = static_cast<std::uint8_t>(i < 3 ? 15 : 9);
      clients.push_back(co_await ws::connect(u, co));
    }
    EXPECT_EQ(conns.size(), 6u);
    std::string text;
    for (int i = 0; i < 2000; ++i) text += "broadcast " + std::to_string(i) + " ";
    for (int round = 0; round < 3; ++round) {
      ws::PreparedMessage msg(text + std::to_string(round));
      for (ws::Connection* c : conns) EXPECT_TRUE(c->send(msg));
      // A connection's own messages still inflate after a shared one (its compressor was reset).
      for (ws::Connection* c : conns) c->send_text("own " + std::to_string(round) + text);
      for (auto& c : clients) {
        EXPECT_EQ((co_await c.receive()).view(), text + std::to_string(round));
        EXPECT_EQ((co_await c.receive()).view(), "own " + std::to_string(round) + text);
      }
    }
    for (auto& c : clients) co_await c.close();
  }(url(server, "/"), conns));
}

TEST(WsApi, SlowConsumerIsDroppedWith1008) {
  EventLoop loop;
  struct Flood : ws::Handler {
    void on_open(ws::Connection& c) override {
      std::string chunk(64 * 1024, 'f');
      for (int i = 0; i < 400 && c.send_text(chunk); ++i) {
      }
      EXPECT_FALSE(c.is_open());
    }
    void on_message(ws::Connection&, ws::Message&&) override {}
  };
  ws::Options o;
  o.slow_consumer = ws::SlowConsumer::drop;
  o.send_queue_limit = 256 * 1024;
  o.ping_interval = Duration::zero();
  Server server =
      ws::serve(loop, [](const ws::UpgradeRequest&) { return std::make_unique<Flood>(); }, "127.0.0.1", 0, o);
  run_until_complete(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    RawWs c = co_await RawWs::open(loop, port);
    RawFrame f = co_await c.read();
    int messages = 0;
    for (; !f.eof && f.opcode != ws::Opcode::close; f = co_await c.read()) ++messages;
    EXPECT_LT(messages, 400);
    EXPECT_EQ(f.close_code(), ws::close_code::policy_violation);
    EXPECT_EQ(f.payload.substr(2), "slow consumer: send queue full");
  }(loop, server.sockets().at(0).port()));
}

TEST(WsApi, KeepaliveClosesWith1011WhenNoPongComes) {
  EventLoop loop;
  ws::Options o;
  o.ping_interval = std::chrono::milliseconds(5);
  o.pong_timeout = std::chrono::milliseconds(5);
  Server server = ws::serve(
      loop, ws::coroutine_handler(loop, [](ws::WebSocket s, std::string) -> Coro<void> { co_await s.wait_closed(); }),
      "127.0.0.1", 0, o);
  run_until_complete(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    RawWs c = co_await RawWs::open(loop, port);
    RawFrame ping = co_await c.read();
    EXPECT_EQ(ping.opcode, ws::Opcode::ping);
    c.send(ws::Opcode::pong, ping.payload);  // the first is answered: another ping follows
    EXPECT_EQ((co_await c.read()).opcode, ws::Opcode::ping);
    RawFrame f = co_await c.read();  // not this one: the server gives up
    EXPECT_EQ(f.opcode, ws::Opcode::close);
    EXPECT_EQ(f.close_code(), ws::close_code::internal_error);
    EXPECT_TRUE(co_await c.closed());  // the server half-closed after its close frame
    c.close_tcp();                     // and waits for us to close
    co_await finish_server_tasks();
  }(loop, server.sockets().at(0).port()));
}

TEST(WsApi, SecureWebSocketOverTls) {
  EventLoop loop;
  Server server = ws::serve(loop, ws::coroutine_handler(loop, coro_echo), "127.0.0.1", 0, localhost_server());
  run_until_complete(loop, [](std::uint16_t port) -> Coro<void> {
    SslContext trusting = trusting_client();
    ws::ConnectOptions co;
    co.ssl = &trusting;
    ws::WebSocket c = co_await ws::connect("wss://localhost:" + std::to_string(port) + "/echo?x=1", co);
    std::string big(100000, 's');
    co_await c.send(big);
    EXPECT_EQ((co_await c.receive()).view(), big);
    co_await c.close();
    EXPECT_EQ(c.close_code(), ws::close_code::normal);
    // Without trusting the test PKI the certificate is refused.
    bool refused = false;
    try {
      co_await ws::connect("wss://localhost:" + std::to_string(port) + "/echo?x=1");
    } catch (const SslError&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
  }(server.sockets().at(0).port()));
}

TEST(WsApi, SendWaitsForDrainWhileThePeerDoesNotRead) {
  EventLoop loop;
  ws::Options o;
  o.ping_interval = Duration::zero();
  o.deflate.enabled = false;
  std::size_t most_buffered = 0, sent = 0;
  auto h = ws::coroutine_handler(loop, [&](ws::WebSocket s, std::string) -> Coro<void> {
    std::string chunk(64 * 1024, 'w');
    try {
      for (;;) {
        co_await s.send(chunk);  // waits while the output is above the transport's high-water mark
        ++sent;
        most_buffered = std::max(most_buffered, s.connection()->buffered_amount());
      }
    } catch (const ws::ConnectionClosed&) {
    }
  });
  Server server = ws::serve(loop, h, "127.0.0.1", 0, o);
  run_until_complete(loop, [](EventLoop& loop, std::uint16_t port, std::size_t& sent) -> Coro<void> {
    RawWs c = co_await RawWs::open(loop, port, "");
    // Read 200 messages slowly (a read per message): the sender must have waited, not queued everything.
    for (int i = 0; i < 200; ++i) EXPECT_EQ((co_await c.read()).payload.size(), 64u * 1024);
    EXPECT_LT(sent, 400u);
    c.close_frame(ws::close_code::normal);
    EXPECT_TRUE(co_await c.closed());
    co_await finish_server_tasks();
  }(loop, server.sockets().at(0).port(), sent));
  // Never more than the high-water mark plus one message in flight on our side.
  EXPECT_LE(most_buffered, 64u * 1024 + 64 * 1024 + 16);
}

// Between messages a compressed connection holds no zlib stream (they come from a per-thread pool for the length
// of a message): only, for context takeover, each direction's window, the last 2^12 bytes at the default 12 bits.
// With no_context_takeover both ways it holds nothing. The messages refer to earlier ones (the same text five
// times), so a window handed wrongly from one stream to the next would garble them.
TEST(WsApi, CompressionMemoryBetweenMessagesIsTheWindowsOnly) {
  EventLoop loop;
  Server server = ws::serve(loop, ws::coroutine_handler(loop, coro_echo), "127.0.0.1", 0);
  for (const bool takeover : {true, false}) {
    std::size_t client_side = SIZE_MAX;
    run_until_complete(loop, [](std::string u, bool takeover, std::size_t& client_side) -> Coro<void> {
      ws::ConnectOptions co;
      co.options.deflate.no_context_takeover = !takeover;
      co.options.deflate.request_peer_no_context_takeover = !takeover;
      ws::WebSocket c = co_await ws::connect(u, co);
      EXPECT_FALSE(c.connection()->extensions().empty());
      std::string text;
      for (int i = 0; i < 20000; ++i) text += std::to_string(i * 7919 % 10007) + " ";
      for (int i = 0; i < 5; ++i) {
        co_await c.send(text);
        EXPECT_EQ((co_await c.receive()).view(), text);
        EXPECT_EQ(c.connection()->compression_memory(), takeover ? 2u * 4096 : 0u);
      }
      client_side = c.connection()->compression_memory();
      co_await c.close();
    }(url(server), takeover, client_side));
    ::testing::Test::RecordProperty(takeover ? "compression_memory" : "compression_memory_no_takeover",
                                    std::to_string(client_side));
  }
}

TEST(WsApi, Utf8ValidatorIsIncremental) {
  ws::Utf8Validator v;
  std::string s = "ascii then \xf0\x9f\x98\x80 and \xe2\x98\x83" + std::string(100, 'a') + "\xc3\xa9";
  for (char c : s) EXPECT_TRUE(v.feed(std::string_view(&c, 1)));
  EXPECT_TRUE(v.complete());
  v.reset();
  EXPECT_TRUE(v.feed(std::string_view("\xf0\x9f")));
  EXPECT_FALSE(v.complete());
  EXPECT_FALSE(v.feed(std::string_view("a")));  // fails at the first impossible byte
  EXPECT_TRUE(v.failed());
  EXPECT_FALSE(ws::is_valid_utf8("\xed\xa0\x80"));
  EXPECT_TRUE(ws::is_valid_utf8(std::string(1000, 'x') + "\xf4\x8f\xbf\xbf"));
}

}  // namespace
}  // namespace tulipa::test
