// The HTTP server against raw sockets: keep-alive, pipelining, HEAD/204/304, 100-continue, chunked uploads,
// routing, upgrades, every smuggling and limit case (each answered with its status and a closed connection, and
// one log line), timeouts and graceful shutdown.
#include "tulipa/http/server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "loop_helpers.hpp"
#include "raw_client.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"

namespace tulipa::http {
namespace {

using test::RawClient;
using test::RawResponse;
using namespace std::chrono_literals;

// A server on a fresh loop with the routes most tests use; log lines are kept.
struct HttpServerTest : ::testing::Test {
  EventLoop loop;
  Router router;
  Server server;
  std::vector<std::string> logs;
  Event gate;  // the /slow handler waits on it
  bool slow_started = false;

  void SetUp() override {
    loop.set_log_handler([this](std::string_view line) { logs.emplace_back(line); });
    router.get("/", [](Request&) { return Response(200, "Hello, World!"); });
    router.post("/echo", [](Request& r) { return Response(200, std::string(r.body())); });
    router.get("/rooms/{name}", [](Request& r) { return Response(200, "room " + std::string(r.param("name"))); });
    router.get("/files/{rest...}", [](Request& r) { return Response(200, std::string(r.param("rest"))); });
    router.get("/nothing", [](Request&) { return Response(204); });
    router.get("/cached", [](Request&) { return Response(304); });
    router.get("/throws", [](Request&) -> Response { throw std::runtime_error("boom"); });
    router.get("/fast", [](Request& r) { return Response(200, "fast " + std::string(r.query())); });
    router.get("/slow", [this](Request&) -> Coro<Response> {
      slow_started = true;
      co_await gate.wait();
      co_return Response(200, "slow");
    });
    router.post("/async-echo", [](Request& r) -> Coro<Response> {
      co_await tulipa::sleep(0ms);
      co_return Response(200, std::string(r.body()));
    });
  }
  void start(ServerConfig config = {}) { server = serve(loop, std::move(router), "127.0.0.1", 0, config); }
  std::uint16_t port() const { return server.sockets().at(0).port(); }
  void TearDown() override {
    server = Server();
    test::finish_loop(loop);
  }
};

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  start();
  RawClient c(loop, port());
  for (int i = 0; i < 3; ++i) {
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto rs = c.responses(static_cast<std::size_t>(i + 1));
    ASSERT_EQ(rs.size(), static_cast<std::size_t>(i + 1));
    EXPECT_EQ(rs.back().status, 200);
    EXPECT_EQ(rs.back().body, "Hello, World!");
    EXPECT_TRUE(rs.back().has("Content-Type: text/plain; charset=utf-8\r\n"));
    EXPECT_TRUE(rs.back().has("Date: "));
    EXPECT_FALSE(rs.back().has("Connection: close"));
  }
  EXPECT_FALSE(c.closed());
  EXPECT_EQ(server.active_connections(), 1u);
  EXPECT_TRUE(logs.empty());
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrderBehindASlowHandler) {
  start();
  RawClient c(loop, port());
  c.send(
      "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast?1 HTTP/1.1\r\nHost: x\r\n\r\nGET /fast?2 HTTP/1.1\r\nHost: "
      "x\r\n\r\n");
  ASSERT_TRUE(test::run_until(loop, [&] { return slow_started; }));
  EXPECT_TRUE(c.received().empty());  // nothing overtakes the slow answer
  gate.set();
  const auto rs = c.responses(3);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].body, "slow");
  EXPECT_EQ(rs[1].body, "fast 1");
  EXPECT_EQ(rs[2].body, "fast 2");
}

TEST_F(HttpServerTest, ManyPipelinedRequestsInOneSend) {
  start();
  RawClient c(loop, port());
  std::string batch;
  for (int i = 0; i < 50; ++i) batch += "GET /fast?" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  c.send(batch);
  const auto rs = c.responses(50);
  ASSERT_EQ(rs.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(rs[static_cast<std::size_t>(i)].body, "fast " + std::to_string(i));
}

TEST_F(HttpServerTest, RequestSplitAtEveryByteIsStillOneRequest) {
  start();
  RawClient c(loop, port());
  const std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  for (char ch : req) {
    c.send(std::string(1, ch));
    loop.run_once();
  }
  const RawResponse r = c.response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
}

TEST_F(HttpServerTest, ConnectionCloseAndHttp10) {
  start();
  {
    RawClient c(loop, port());
    c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const RawResponse r = c.response();
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.has("Connection: close\r\n"));
    EXPECT_TRUE(c.wait_closed());
  }
  {
    RawClient c(loop, port());
    c.send("GET / HTTP/1.0\r\n\r\n");
    EXPECT_EQ(c.response().status, 200);
    EXPECT_TRUE(c.wait_closed());
  }
  {
    RawClient c(loop, port());
    c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /fast HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const auto rs = c.responses(2);
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_TRUE(rs[0].has("Connection: keep-alive\r\n"));
    EXPECT_FALSE(c.closed());
  }
}

TEST_F(HttpServerTest, HeadAnd204And304HaveNoBody) {
  start();
  RawClient c(loop, port());
  c.send(
      "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\n\r\nGET /cached HTTP/1.1\r\nHost: "
      "x\r\n\r\n"
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto rs = c.responses(4, {true, false, false, false});
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_TRUE(rs[0].has("Content-Length: 13\r\n"));
  EXPECT_EQ(rs[0].body, "");
  EXPECT_EQ(rs[1].status, 204);
  EXPECT_FALSE(rs[1].has("Content-Length"));
  EXPECT_EQ(rs[2].status, 304);
  EXPECT_FALSE(rs[2].has("Content-Length"));
  EXPECT_EQ(rs[3].body, "Hello, World!");  // the framing after them is intact
}

TEST_F(HttpServerTest, ExpectContinueIsAnsweredBeforeTheBody) {
  start();
  RawClient c(loop, port());
  c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_TRUE(test::run_until(loop, [&] { return c.received().find("\r\n\r\n") != std::string::npos; }));
  EXPECT_EQ(c.received(), "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("ping");
  const auto rs = c.responses(2);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].status, 100);
  EXPECT_EQ(rs[1].status, 200);
  EXPECT_EQ(rs[1].body, "ping");
}

TEST_F(HttpServerTest, ExpectContinueWithATooLargeBodyGets413AtOnce) {
  ServerConfig config;
  config.max_body = 10;
  start(config);
  RawClient c(loop, port());
  c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(c.response().status, 413);
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(HttpServerTest, ChunkedUploadsAreDecoded) {
  start();
  RawClient c(loop, port());
  c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  loop.run_once();
  c.send(
      "6;x=y\r\n world\r\n0\r\nTrailer: t\r\n\r\nPOST /async-echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n");
  const auto rs = c.responses(2);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].body, "hello world");
  EXPECT_EQ(rs[1].body, "abc");
}

// A chunked body of `size` bytes in chunks of changing sizes (1 to 4,099 bytes), and the body itself.
std::pair<std::string, std::string> chunked_body(std::size_t size) {
  std::string body, wire;
  std::uint32_t x = 12345;
  while (body.size() < size) {
    x = x * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>(1 + (x >> 8) % 4099, size - body.size());
    std::string chunk;
    for (std::size_t i = 0; i < n; ++i) chunk.push_back(static_cast<char>('a' + (x + i * 7) % 26));
    char line[32];
    std::snprintf(line, sizeof line, "%zx%s\r\n", n, (x & 1) ? ";ext=1" : "");
    wire += line + chunk + "\r\n";
    body += chunk;
  }
  wire += "0\r\n\r\n";
  return {body, wire};
}

// The body goes out in pieces of 1 to 3,000 bytes cut anywhere (inside size lines and CRLFs too), the loop running
// between them, so the server reads it in hundreds of small reads; each read decodes only its own bytes (the
// decoder's state is kept), and the handler, synchronous or a coroutine, gets the whole body once.
TEST_F(HttpServerTest, LargeChunkedUploadInManySmallReads) {
  router.post("/size", [](Request& r) {
    std::uint32_t sum = 0;
    for (char c : r.body()) sum = sum * 31 + static_cast<unsigned char>(c);
    return Response(200, std::to_string(r.body().size()) + " " + std::to_string(sum));
  });
  start();
  RawClient c(loop, port());
  const auto [body, wire] = chunked_body(512 * 1024);
  std::uint32_t sum = 0;
  for (char ch : body) sum = sum * 31 + static_cast<unsigned char>(ch);
  for (const char* path : {"/size", "/async-echo"}) {
    c.send(std::string("POST ") + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::size_t sent = 0;
    std::uint32_t x = 7;
    int pieces = 0;
    while (sent < wire.size()) {
      x = x * 1103515245u + 12345u;
      const std::size_t n = std::min<std::size_t>(1 + (x >> 8) % 3000, wire.size() - sent);
      c.send(std::string_view(wire).substr(sent, n));
      sent += n;
      ++pieces;
      loop.run_once();
    }
    EXPECT_GT(pieces, 150);
  }
  c.send("GET /fast?after HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto rs = c.responses(3);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_EQ(rs[0].body, std::to_string(body.size()) + " " + std::to_string(sum));
  EXPECT_EQ(rs[1].status, 200);
  EXPECT_TRUE(rs[1].body == body) << "the coroutine handler's body differs (" << rs[1].body.size() << " bytes)";
  EXPECT_EQ(rs[2].body, "fast after");
  EXPECT_FALSE(c.closed());
  EXPECT_TRUE(logs.empty());
}

// The size limit holds for a chunked body arriving in pieces: 413 as soon as the decoded bytes pass it, while the
// client is still sending (it never sends the end), and the connection closes.
TEST_F(HttpServerTest, ChunkedUploadPastTheLimitIsRefusedAsItArrives) {
  ServerConfig config;
  config.max_body = 64 * 1024;
  start(config);
  RawClient c(loop, port());
  const auto [body, wire] = chunked_body(80 * 1024);
  c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::size_t cut = wire.size() - 2000;  // past the limit, before the last chunks
  for (std::size_t sent = 0; sent < cut && !c.closed();) {
    const std::size_t n = std::min<std::size_t>(1000, cut - sent);
    c.send(std::string_view(wire).substr(sent, n));
    sent += n;
    loop.run_once();
  }
  EXPECT_EQ(c.response().status, 413);
  EXPECT_TRUE(c.wait_closed());
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_NE(logs[0].find("413"), std::string::npos);
}

TEST_F(HttpServerTest, CoroutineHandlerGetsItsOwnCopyOfTheRequest) {
  start();
  RawClient c(loop, port());
  c.send("POST /async-echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\npayload");
  const RawResponse r = c.response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "payload");
}

TEST_F(HttpServerTest, RoutesParamsAnd404And405) {
  router.route("DELETE", "/rooms/{name}", [](Request&) { return Response(204); });
  start();
  RawClient c(loop, port());
  c.send(
      "GET /rooms/general HTTP/1.1\r\nHost: x\r\n\r\nGET /files/a/b/c.txt HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\nPUT /rooms/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
      "GET /rooms/ HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto rs = c.responses(5);
  ASSERT_EQ(rs.size(), 5u);
  EXPECT_EQ(rs[0].body, "room general");
  EXPECT_EQ(rs[1].body, "a/b/c.txt");
  EXPECT_EQ(rs[2].status, 404);
  EXPECT_EQ(rs[3].status, 405);
  EXPECT_TRUE(rs[3].has("Allow: GET, DELETE, HEAD\r\n")) << rs[3].head;
  EXPECT_EQ(rs[4].status, 404);
  EXPECT_FALSE(c.closed());
}

TEST_F(HttpServerTest, AThrowingHandlerGets500AndALogLine) {
  start();
  RawClient c(loop, port());
  c.send("GET /throws HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto rs = c.responses(2);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].status, 500);
  EXPECT_EQ(rs[1].status, 200);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_NE(logs[0].find("boom"), std::string::npos);
}

// The protocol an upgrade hands the connection to: echoes, and records what it saw first.
struct EchoAfterUpgrade : Protocol {
  std::string* seen;
  Transport* t = nullptr;
  explicit EchoAfterUpgrade(std::string* s) : seen(s) {}
  void connection_made(Transport& tr) override {
    t = &tr;
    *seen += "[made]";
  }
  void data_received(std::span<const std::byte> d) override {
    *seen += test::text(d);
    t->write(d);
  }
};

TEST_F(HttpServerTest, UpgradeHandsTheTransportAndTheBytesReadAheadToANewProtocol) {
  std::string seen;
  router.get("/ws", [&](Request& r) {
    if (!r.wants_upgrade()) return Response(426);
    Response resp(101);
    resp.add_header("Upgrade", "echo");
    resp.upgrade(std::make_unique<EchoAfterUpgrade>(&seen));
    return resp;
  });
  router.get("/ws-async", [&](Request&) -> Coro<Response> {
    co_await tulipa::sleep(0ms);
    Response resp(101);
    resp.add_header("Upgrade", "echo");
    resp.upgrade(std::make_unique<EchoAfterUpgrade>(&seen));
    co_return resp;
  });
  // The raw form: the function writes its own 101 and swaps the protocol itself.
  router.get("/raw", [&](Request& r) {
    EXPECT_EQ(r.header("upgrade"), "echo");
    return Response::take_over([&](Transport& t, std::span<const std::byte> already_read) {
      t.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
      auto p = std::make_unique<EchoAfterUpgrade>(&seen);
      EchoAfterUpgrade& echo = *p;
      std::unique_ptr<StreamProtocol> old = t.set_protocol(std::move(p));
      echo.connection_made(t);
      echo.data_received(already_read);
      return old;
    });
  });
  start();
  for (std::string path : {"/ws", "/ws-async", "/raw"}) {
    seen.clear();
    RawClient c(loop, port());
    c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly bytes");
    ASSERT_TRUE(test::run_until(loop, [&] { return c.received().find("early bytes") != std::string::npos; }));
    EXPECT_EQ(c.received().rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
    EXPECT_NE(c.received().find("Connection: Upgrade\r\nUpgrade: echo\r\n"), std::string::npos);
    c.send("more");
    ASSERT_TRUE(test::run_until(loop, [&] { return seen == "[made]early bytesmore"; })) << seen;
    EXPECT_EQ(server.active_connections(), 0u);  // the HTTP server forgot it
  }
}

// --- every smuggling and limit case: its status, "Connection: close", the connection closed, one log line.
struct BadRequest {
  const char* name;
  std::string bytes;
  int status;
};

class HttpServerRejects : public HttpServerTest, public ::testing::WithParamInterface<BadRequest> {};

TEST_P(HttpServerRejects, AnswersWithItsStatusAndCloses) {
  ServerConfig config;
  config.max_body = 1000;
  config.head.max_request_line = 200;
  config.head.max_head = 2000;
  config.max_headers = 20;
  start(config);
  RawClient c(loop, port());
  // A good request first: the bad one must not disturb what came before it.
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + GetParam().bytes);
  const auto rs = c.responses(2);
  ASSERT_EQ(rs.size(), 2u) << c.received();
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_EQ(rs[1].status, GetParam().status) << rs[1].head;
  EXPECT_TRUE(rs[1].has("Connection: close\r\n"));
  EXPECT_TRUE(c.wait_closed());
  EXPECT_EQ(logs.size(), 1u);
}

const std::string big_header = "X-Big: " + std::string(2100, 'b') + "\r\n";
std::string many_headers() {
  std::string s;
  for (int i = 0; i < 21; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Http, HttpServerRejects,
    ::testing::Values(
        BadRequest{"LengthAndChunked",
                   "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                   400},
        BadRequest{"DifferingLengths",
                   "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
        BadRequest{"ChunkedNotLast", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
                   400},
        BadRequest{"SpaceBeforeColon", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                   400},
        BadRequest{"ObsFold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400},
        BadRequest{"BareCrInValue", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400},
        BadRequest{"BareLfLineEnd", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400},
        BadRequest{"BareLfInChunkSize",
                   "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400},
        BadRequest{"ChunkSizeOverflow",
                   "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n",
                   400},
        BadRequest{"LastChunkWithoutCrlf",
                   "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\rX", 400},
        BadRequest{"MissingHost", "GET / HTTP/1.1\r\n\r\n", 400},
        BadRequest{"InvalidMethod", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        BadRequest{"InvalidTarget", "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        BadRequest{"InvalidHeaderName", "GET / HTTP/1.1\r\nHost: x\r\nX[1]: v\r\n\r\n", 400},
        BadRequest{"UnsupportedVersion", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        BadRequest{"UnknownCoding", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        BadRequest{"RequestLineTooLong", "GET /" + std::string(300, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
        BadRequest{"RequestLineTooLongUnfinished", "GET /" + std::string(300, 'a'), 414},
        BadRequest{"HeadTooLarge", "GET / HTTP/1.1\r\nHost: x\r\n" + big_header + "\r\n", 431},
        BadRequest{"HeadTooLargeUnfinished", "GET / HTTP/1.1\r\nHost: x\r\n" + big_header, 431},
        BadRequest{"TooManyHeaders", "GET / HTTP/1.1\r\nHost: x\r\n" + many_headers() + "\r\n", 431},
        BadRequest{"BodyTooLarge", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", 413},
        BadRequest{"ChunkedBodyTooLarge",
                   "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n" +
                       std::string(1001, 'z') + "\r\n",
                   413}),
    [](const auto& info) { return std::string(info.param.name); });

// --- timeouts and shutdown

TEST_F(HttpServerTest, SlowlorisIsCutAtTheHeaderDeadline) {
  ServerConfig config;
  config.header_timeout = 300ms;
  config.sweep = 20ms;
  start(config);
  RawClient c(loop, port());
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // a first request makes the next head's clock start at its byte
  ASSERT_EQ(c.response().status, 200);
  // One byte every 10 ms of a head that never ends: each byte is progress, but the deadline is for the whole head.
  std::size_t sent = 0;
  const std::string trickle = "GET / HTTP/1.1\r\nX-Slow: " + std::string(10000, 'a');
  std::function<void()> tick = [&] {
    if (c.closed() || sent == trickle.size()) return;
    c.send(trickle.substr(sent++, 1));
    loop.call_later(10ms, tick);
  };
  tick();
  ASSERT_TRUE(c.wait_closed());
  const auto rs = c.responses(2);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].status, 408);
  EXPECT_LT(sent, trickle.size());
  EXPECT_EQ(logs.size(), 1u);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionsAreClosedQuietly) {
  ServerConfig config;
  config.keep_alive_timeout = 100ms;
  config.sweep = 20ms;
  start(config);
  RawClient c(loop, port());
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(c.response().status, 200);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_EQ(c.responses(2).size(), 1u);
  EXPECT_TRUE(logs.empty());
}

TEST_F(HttpServerTest, SlowBodyIsCutAtTheMinimumRate) {
  ServerConfig config;
  config.header_timeout = 100ms;
  config.min_body_rate = 100000;
  config.sweep = 20ms;
  start(config);
  RawClient c(loop, port());
  c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc");
  ASSERT_TRUE(c.wait_closed());
  EXPECT_EQ(c.response().status, 408);
  EXPECT_EQ(logs.size(), 1u);
}

TEST_F(HttpServerTest, GracefulShutdownFinishesInFlightRequestsAndClosesIdleOnes) {
  start();
  const std::uint16_t p = port();
  RawClient idle(loop, p);
  idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(idle.response().status, 200);
  RawClient busy(loop, p);
  busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(test::run_until(loop, [&] { return slow_started; }));
  Future<void> done = server.shutdown(10s);
  EXPECT_TRUE(idle.wait_closed());
  EXPECT_FALSE(busy.closed());
  EXPECT_FALSE(done.done());
  gate.set();
  const RawResponse r = busy.response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "slow");
  EXPECT_TRUE(r.has("Connection: close\r\n"));
  EXPECT_TRUE(busy.wait_closed());
  ASSERT_TRUE(test::run_until(loop, [&] { return done.done(); }));
  EXPECT_TRUE(server.sockets().empty());
}

TEST_F(HttpServerTest, ShutdownAbortsWhatOutlivesTheGrace) {
  start();
  RawClient busy(loop, port());
  busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(test::run_until(loop, [&] { return slow_started; }));
  Future<void> done = server.shutdown(50ms);
  ASSERT_TRUE(test::run_until(loop, [&] { return done.done(); }));
  EXPECT_TRUE(busy.wait_closed());
  EXPECT_TRUE(busy.received().empty());
}

}  // namespace
}  // namespace tulipa::http
