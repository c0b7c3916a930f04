// https: the server behind the TLS layer (Server::factory(true) on a TLS create_server, ALPN http/1.1) and the
// client with verification on (a context trusting the test CA passes, the default system store refuses).
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "loop_helpers.hpp"
#include "support/net_util.hpp"
#include "support/test_certs.hpp"
#include "tulipa/http/client.hpp"
#include "tulipa/http/server.hpp"
#include "tulipa/http/static_files.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/task.hpp"
#include "tulipa/tls_net.hpp"

namespace tulipa::http {
namespace {

namespace fs = std::filesystem;

struct HttpTlsTest : ::testing::Test {
  EventLoop loop;
  Server server;
  tulipa::Server listener;
  fs::path dir;
  std::string big;
  std::string alpn_seen;
  std::string base;

  void SetUp() override {
    char tmpl[] = "/tmp/tulipa-https-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    big.assign(300000, 'q');
    std::ofstream(dir / "big.txt") << big;
    Router router;
    router.get("/", [this](Request& r) {
      if (auto* tls = dynamic_cast<SslTransport*>(&r.transport())) alpn_seen = tls->alpn_protocol();
      return Response(200, "secure hello");
    });
    router.get("/files/{path...}", static_files(dir.string()));
    server = make_server(loop, std::move(router));
    SslContext ctx = test::localhost_server();
    ctx.set_alpn_protocols({"http/1.1"});
    listener = create_server(loop, server.factory(/*encrypted=*/true), "127.0.0.1", 0, ctx);
    base = "https://localhost:" + std::to_string(listener.sockets().at(0).port());
  }
  void TearDown() override {
    listener.close();
    server = Server();
    test::finish_loop(loop);
    fs::remove_all(dir);
  }
  template <class F>
  auto run(F f) {
    return test::run_task(loop, std::move(f));
  }
};

TEST_F(HttpTlsTest, ServesOverTlsWithAlpnAndFileBodiesThroughTheTransport) {
  ClientOptions options;
  options.ssl = test::trusting_client();
  options.ssl->set_alpn_protocols({"http/1.1"});
  Client client(loop, options);
  auto task = run([&]() -> Coro<std::string> {
    ClientResponse a = co_await client.get(base + "/");
    ClientResponse b = co_await client.get(base + "/files/big.txt");
    co_return a.body + " " + std::to_string(b.body.size()) + " " + (b.body == big ? "same" : "different");
  });
  EXPECT_EQ(task.result(), "secure hello 300000 same");
  EXPECT_EQ(alpn_seen, "http/1.1");
  EXPECT_EQ(client.connections_opened(), 1u);
  client.close_idle();
}

TEST_F(HttpTlsTest, VerificationIsOnByDefault) {
  Client client(loop);  // the system's trust store: the test CA is not in it
  auto task = run([&]() -> Coro<void> { co_await client.get(base + "/"); });
  EXPECT_THROW(task.result(), SslError);
}

}  // namespace
}  // namespace tulipa::http
