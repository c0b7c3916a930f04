// Streamed bodies: a request body handed to a streaming handler piece by piece (with the socket's reading paused
// while the handler does not take it, and the body limit checked as it arrives), responses written piece by piece
// (chunked, each write waiting for the transport to drain), and the client sending a streamed (chunked) body.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "loop_helpers.hpp"
#include "raw_client.hpp"
#include "tulipa/http/client.hpp"
#include "tulipa/http/server.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"
#include "tulipa/transport.hpp"

namespace tulipa::http {
namespace {

using test::RawClient;

// A body of `n` bytes that tells its positions apart (so a lost, doubled or reordered piece shows).
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// Decodes a chunked body from `raw` (the bytes after a response head); false if it is not whole and well-formed.
bool dechunk(std::string_view raw, std::string& out) {
  ChunkedDecoder dec;
  for (;;) {
    const ChunkedDecoder::Step st = dec.next(raw);
    raw.remove_prefix(st.consumed);
    if (st.kind == ChunkedDecoder::Step::Kind::data) {
      out.append(st.data);
      continue;
    }
    return st.kind == ChunkedDecoder::Step::Kind::done;
  }
}

// Sends `data` whenever the socket takes it (the loop says when), without blocking.
struct Pusher {
  EventLoop& loop;
  int fd;
  std::string data;
  std::size_t sent = 0;
  Pusher(EventLoop& l, int f, std::string d) : loop(l), fd(f), data(std::move(d)) {
    loop.add_writer(fd, [this] { push(); });
  }
  ~Pusher() { loop.remove_writer(fd); }
  void push() {
    while (sent < data.size()) {
      const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
    loop.remove_writer(fd);
  }
};

struct HttpStreamTest : ::testing::Test {
  EventLoop loop;
  Router router;
  Server server;
  std::vector<std::string> logs;
  Event gate;

  // What the streaming handlers saw.
  std::vector<std::string> pieces;
  std::size_t max_held = 0;  // the most body bytes the server held for the handler at once
  Transport* transport = nullptr;
  Transport* big_transport = nullptr;  // the connection /big answers on
  std::string failure;

  void SetUp() override {
    loop.set_log_handler([this](std::string_view line) { logs.emplace_back(line); });
    router.get("/", [](Request&) { return Response(200, "Hello, World!"); });
    // Reads the body piece by piece; answers "<bytes>:<pieces>".
    router.post("/upload", [this](Request&, BodyReader& body) -> Coro<Response> {
      std::size_t bytes = 0;
      try {
        for (;;) {
          const std::string_view piece = co_await body.read();
          if (piece.empty()) break;
          pieces.emplace_back(piece);
          bytes += piece.size();
        }
      } catch (const std::exception& e) {
        failure = e.what();
        throw;
      }
      co_return Response(200, std::to_string(bytes) + ":" + std::to_string(pieces.size()));
    });
    // Waits for the gate before it reads; answers with the body's length and whether it matched pattern().
    router.post("/gated", [this](Request& r, BodyReader& body) -> Coro<Response> {
      transport = &r.transport();
      co_await gate.wait();
      std::string all;
      for (;;) {
        max_held = std::max(max_held, body.buffered());
        const std::string_view piece = co_await body.read();
        if (piece.empty()) break;
        all.append(piece);
      }
      co_return Response(200, std::to_string(all.size()) + (all == pattern(all.size()) ? " intact" : " damaged"));
    });
    router.post("/ignore", [](Request&, BodyReader&) -> Coro<Response> { co_return Response(200, "ignored"); });
    router.get("/pieces", [](Request&) {
      Response r(200);
      r.set_stream_body([](BodyWriter& w) -> Coro<void> {
        co_await w.write("a");
        co_await w.write("");  // nothing: an empty chunk would end the body
        co_await w.write("bb");
        co_await w.write("ccc");
      });
      return r;
    });
    router.get("/big", [this](Request& req) {
      Transport* t = &req.transport();
      big_transport = t;
      Response r(200);
      r.set_stream_body([this, t](BodyWriter& w) -> Coro<void> {
        const std::string all = pattern(32u << 20);
        const std::size_t high = t->get_write_buffer_limits().high;
        for (std::size_t at = 0; at < all.size(); at += 256 * 1024) {
          // The writer never runs ahead of the transport's high-water mark.
          const std::size_t held = t->get_write_buffer_size();
          if (held > high) failure = "buffer above the high-water mark: " + std::to_string(held);
          max_held = std::max(max_held, held);
          co_await w.write(std::string_view(all).substr(at, 256 * 1024));
        }
      });
      return r;
    });
    router.get("/fails", [](Request&) -> Coro<Response> {
      Response r(200);
      r.set_stream_body([](BodyWriter& w) -> Coro<void> {
        co_await w.write("partial");
        throw std::runtime_error("producer broke");
      });
      co_return r;
    });
  }
  void start(ServerConfig config = {}) { server = serve(loop, std::move(router), "127.0.0.1", 0, config); }
  std::uint16_t port() const { return server.sockets().at(0).port(); }
  void TearDown() override {
    server = Server();
    test::finish_loop(loop);
  }
};

TEST_F(HttpStreamTest, TheHandlerGetsTheBodyAsItArrives) {
  start();
  RawClient c(loop, port());
  c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello");
  // The handler runs, and has the first piece, before the body is complete.
  ASSERT_TRUE(test::run_until(loop, [&] { return pieces.size() == 1; }));
  EXPECT_EQ(pieces[0], "hello");
  c.send("world");
  const auto r = c.response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "10:2");
  EXPECT_EQ(pieces[1], "world");
  EXPECT_TRUE(logs.empty());
}

TEST_F(HttpStreamTest, AChunkedBodyIsDecodedAndTheNextRequestFollowsInOrder) {
  start();
  RawClient c(loop, port());
  c.send(
      "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n"
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto rs = c.responses(2);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].body, "11:1");  // both chunks came in one read: one piece
  EXPECT_EQ(rs[1].body, "Hello, World!");
  EXPECT_FALSE(c.closed());
}

TEST_F(HttpStreamTest, ReadingPausesWhileTheHandlerDoesNotTakeTheBody) {
  ServerConfig config;
  config.max_read_ahead = 64 * 1024;
  config.max_body = 32u << 20;
  start(config);
  RawClient c(loop, port());
  const std::size_t size = 16u << 20;
  Pusher p(loop, c.fd(),
           "POST /gated HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n" + pattern(size));
  // The handler waits at its gate: the server stops reading the socket (the client's sends back up).
  ASSERT_TRUE(test::run_until(loop, [&] { return transport && !transport->is_reading(); }));
  EXPECT_LT(p.sent, p.data.size());
  gate.set();
  const auto r = c.response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::to_string(size) + " intact");
  EXPECT_EQ(p.sent, p.data.size());
  // What the server held for the handler: the read-ahead cap and at most one read of the socket beyond it.
  EXPECT_LE(max_held, config.max_read_ahead + 256 * 1024);
  EXPECT_TRUE(logs.empty());
}

TEST_F(HttpStreamTest, AChunkedBodyOverTheLimitIsRefusedAsItArrives) {
  ServerConfig config;
  config.max_body = 1000;
  start(config);
  RawClient c(loop, port());
  c.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" + std::string(600, 'x') +
         "\r\n");
  ASSERT_TRUE(test::run_until(loop, [&] { return pieces.size() == 1; }));
  c.send("258\r\n" + std::string(600, 'y') + "\r\n");  // 1,200 bytes: over the limit, and the body is not over
  const auto r = c.response();
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(r.has("Connection: close"));
  EXPECT_TRUE(c.wait_closed());
  EXPECT_NE(failure.find("refused"), std::string::npos) << failure;
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_NE(logs[0].find("413"), std::string::npos);
}

TEST_F(HttpStreamTest, AMalformedChunkFailsTheHandlersRead) {
  start();
  RawClient c(loop, port());
  c.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX");
  const auto r = c.response();
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_NE(failure.find("refused"), std::string::npos) << failure;
}

TEST_F(HttpStreamTest, AHandlerThatLeavesItsBodyUnreadClosesTheConnection) {
  start();
  RawClient c(loop, port());
  c.send("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
  const auto r = c.response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ignored");
  EXPECT_TRUE(r.has("Connection: close"));
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(HttpStreamTest, ExpectContinueIsAnsweredBeforeTheStreamedBody) {
  start();
  RawClient c(loop, port());
  c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_TRUE(test::run_until(loop, [&] { return c.received().find("100 Continue") != std::string::npos; }));
  c.send("abc");
  ASSERT_TRUE(test::run_until(loop, [&] { return c.received().find("3:1") != std::string::npos; }));
  EXPECT_EQ(c.received().find("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), 0u);
}

TEST_F(HttpStreamTest, AStreamedResponseIsSentChunkedAndTheConnectionCarriesOn) {
  start();
  RawClient c(loop, port());
  c.send("GET /pieces HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(test::run_until(loop, [&] { return c.received().ends_with("Hello, World!"); }));
  const std::string& got = c.received();
  EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(got.find("Content-Length"), got.rfind("Content-Length"));  // only the second response has one
  EXPECT_NE(got.find("\r\n\r\n1\r\na\r\n2\r\nbb\r\n3\r\nccc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"), std::string::npos);
  EXPECT_FALSE(c.closed());
  EXPECT_TRUE(logs.empty());
}

TEST_F(HttpStreamTest, AStreamedResponseToHttp10EndsWithTheConnection) {
  start();
  RawClient c(loop, port());
  c.send("GET /pieces HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(c.wait_closed());
  const std::string& got = c.received();
  EXPECT_EQ(got.find("Transfer-Encoding"), std::string::npos);
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(got.ends_with("\r\n\r\nabbccc"));
}

TEST_F(HttpStreamTest, AHeadRequestGetsTheHeadOnly) {
  start();
  RawClient c(loop, port());
  c.send("HEAD /pieces HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(test::run_until(loop, [&] { return c.received().ends_with("Hello, World!"); }));
  const std::string& got = c.received();
  EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\n"), std::string::npos);
}

TEST_F(HttpStreamTest, AStreamedResponseWaitsForTheSlowReader) {
  start();
  RawClient c(loop, port());
  loop.remove_reader(c.fd());  // the client reads nothing at first
  c.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  // The socket fills, then the transport's buffer (which stays filled: the client does not read); the producer
  // writes on only as it drains.
  ASSERT_TRUE(test::run_until(loop, [&] { return big_transport && big_transport->get_write_buffer_size() > 0; }));
  std::string got;
  loop.add_reader(c.fd(), [&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(c.fd(), buf, sizeof buf, MSG_DONTWAIT)) > 0) got.append(buf, static_cast<std::size_t>(n));
  });
  ASSERT_TRUE(test::run_until(loop, [&] { return got.ends_with("\r\n0\r\n\r\n"); }));
  EXPECT_EQ(failure, "");
  const std::size_t body_at = got.find("\r\n\r\n") + 4;
  std::string body;
  ASSERT_TRUE(dechunk(std::string_view(got).substr(body_at), body));
  EXPECT_EQ(body.size(), 32u << 20);
  EXPECT_TRUE(body == pattern(32u << 20));
  EXPECT_TRUE(logs.empty());
}

TEST_F(HttpStreamTest, AProducerThatFailsAbortsTheConnection) {
  start();
  RawClient c(loop, port());
  c.send("GET /fails HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(c.wait_closed());
  EXPECT_NE(c.received().find("7\r\npartial\r\n"), std::string::npos);
  EXPECT_EQ(c.received().find("0\r\n\r\n"), std::string::npos);  // no end: the client knows it is truncated
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_NE(logs[0].find("producer broke"), std::string::npos);
}

TEST_F(HttpStreamTest, TheClientStreamsAChunkedBodyAndReadsAStreamedResponse) {
  start();
  Client client(loop);
  const std::string base = "http://127.0.0.1:" + std::to_string(port());
  std::string out;
  test::run_task(loop, [&]() -> Coro<void> {
    BodyProducer body = [](BodyWriter& w) -> Coro<void> {
      co_await w.write("first ");
      co_await w.write("second");
    };
    ClientResponse up = co_await client.request_stream("POST", base + "/upload", std::move(body));
    ClientResponse down = co_await client.get(base + "/pieces");
    out = std::to_string(up.status) + " " + up.body + " " + down.body;
  });
  // The server may get both chunks in one read or two: the bytes are what counts.
  EXPECT_TRUE(out == "200 12:1 abbccc" || out == "200 12:2 abbccc") << out;
  std::string all;
  for (const std::string& p : pieces) all += p;
  EXPECT_EQ(all, "first second");
  EXPECT_EQ(client.connections_opened(), 1u);  // the chunked upload left the connection reusable
  client.close_idle();
}

TEST_F(HttpStreamTest, TheClientStreamsABodyLargerThanTheSocketBuffers) {
  start();
  Client client(loop);
  const std::string base = "http://127.0.0.1:" + std::to_string(port());
  std::string out;
  gate.set();
  test::run_task(loop, [&]() -> Coro<void> {
    const std::string all = pattern(8u << 20);
    BodyProducer body = [&all](BodyWriter& w) -> Coro<void> {
      for (std::size_t at = 0; at < all.size(); at += 100 * 1000)
        co_await w.write(std::string_view(all).substr(at, 100 * 1000));
    };
    ClientResponse r = co_await client.request_stream("POST", base + "/gated", std::move(body));
    out = r.body;
  });
  EXPECT_EQ(out, std::to_string(8u << 20) + " intact");
  client.close_idle();
}

}  // namespace
}  // namespace tulipa::http
