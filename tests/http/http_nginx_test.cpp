// The HTTP client against Debian's nginx, started by CTest as the fixture http_nginx (nginx_fixture.sh: its own
// configuration in a scratch directory, a free port in TULIPA_NGINX_DIR/port).
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "loop_helpers.hpp"
#include "support/net_util.hpp"
#include "tulipa/http/client.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/task.hpp"

namespace tulipa::http {
namespace {

struct HttpNginxTest : ::testing::Test {
  EventLoop loop;
  std::string base;
  void SetUp() override {
    std::ifstream in(std::string(TULIPA_NGINX_DIR) + "/port");
    int port = 0;
    in >> port;
    ASSERT_GT(port, 0) << "the http_nginx fixture did not start nginx";
    base = "http://127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override { test::finish_loop(loop); }
  template <class F>
  auto run(F f) {
    return test::run_task(loop, std::move(f)).result();
  }
};

TEST_F(HttpNginxTest, StaticFilesOverOneKeptAliveConnection) {
  Client client(loop);
  const std::string out = run([&]() -> Coro<std::string> {
    std::string all;
    for (int i = 0; i < 3; ++i) {
      ClientResponse r = co_await client.get(base + "/hello.txt");
      all += std::to_string(r.status) + ":" + r.body + ";";
    }
    co_return all;
  });
  EXPECT_EQ(out, "200:hello from nginx;200:hello from nginx;200:hello from nginx;");
  EXPECT_EQ(client.connections_opened(), 1u);
  client.close_idle();
}

TEST_F(HttpNginxTest, HeadMissingAndRedirects) {
  Client client(loop);
  const std::string out = run([&]() -> Coro<std::string> {
    ClientResponse head = co_await client.request("HEAD", base + "/hello.txt");
    ClientResponse missing = co_await client.get(base + "/nope");
    ClientResponse moved = co_await client.get(base + "/moved");
    ClientResponse dir = co_await client.get(base + "/dir");  // nginx answers 301 to /dir/
    co_return std::to_string(head.status) + " " + std::string(head.header("content-length")) + " [" + head.body + "] " +
        std::to_string(missing.status) + " " + moved.body + " " + dir.body;
  });
  EXPECT_EQ(out, "200 16 [] 404 hello from nginx <p>index</p>");
  client.close_idle();
}

TEST_F(HttpNginxTest, AChunkedResponseIsDecodedAndTheConnectionReused) {
  Client client(loop);
  const std::string out = run([&]() -> Coro<std::string> {
    ClientResponse listing = co_await client.get(base + "/list/");
    ClientResponse after = co_await client.get(base + "/hello.txt");
    co_return std::to_string(listing.status) + " " + std::string(listing.header("transfer-encoding")) + " " +
        (listing.header("content-length").empty() ? "no-length " : "length ") +
        (listing.body.find("alpha.txt") != std::string::npos ? "alpha " : "") +
        (listing.body.find("beta.txt") != std::string::npos ? "beta " : "") +
        (listing.body.ends_with("</html>\r\n") ? "whole " : "cut ") + after.body;
  });
  EXPECT_EQ(out, "200 chunked no-length alpha beta whole hello from nginx");
  EXPECT_EQ(client.connections_opened(), 1u);  // the chunked body was read to its end, so the connection went back
  client.close_idle();
}

// The client's request bodies against nginx's WebDAV module, which stores what it decoded: a body streamed chunked
// (request_stream, in pieces from 1 byte to 64 KiB, 1 MiB in all) and a Content-Length one, each read back whole;
// then DELETE. All over one kept-alive connection.
TEST_F(HttpNginxTest, UploadsStreamedChunkedOrWithALengthAreStoredByNginx) {
  Client client(loop);
  std::string all;
  for (std::size_t i = 0; all.size() < (1u << 20) + 7; ++i)
    all.push_back(static_cast<char>('0' + (i * 7 + i / 91) % 75));
  const std::string out = run([&]() -> Coro<std::string> {
    BodyProducer body = [&all](BodyWriter& w) -> Coro<void> {
      std::size_t at = 0;
      for (std::size_t n = 1; at < all.size(); n = n >= 65536 ? 1 : n * 4) {
        const std::string_view piece = std::string_view(all).substr(at, n);
        co_await w.write(piece);
        at += piece.size();
      }
    };
    ClientResponse put = co_await client.request_stream("PUT", base + "/dav/streamed.bin", std::move(body));
    ClientResponse back = co_await client.get(base + "/dav/streamed.bin");
    ClientResponse put2 = co_await client.request("PUT", base + "/dav/plain.txt", "with a length");
    ClientResponse back2 = co_await client.get(base + "/dav/plain.txt");
    ClientResponse del = co_await client.request("DELETE", base + "/dav/plain.txt");
    ClientResponse del2 = co_await client.request("DELETE", base + "/dav/streamed.bin");
    ClientResponse gone = co_await client.get(base + "/dav/plain.txt");
    co_return std::to_string(put.status) + " " + std::to_string(back.status) + " " +
        (back.body == all ? "same" : "differs(" + std::to_string(back.body.size()) + ")") + " " +
        std::to_string(put2.status) + " " + back2.body + " " + std::to_string(del.status) + " " +
        std::to_string(del2.status) + " " + std::to_string(gone.status);
  });
  EXPECT_EQ(out, "201 200 same 201 with a length 204 204 404");
  EXPECT_EQ(client.connections_opened(), 1u);
  client.close_idle();
}

}  // namespace
}  // namespace tulipa::http
