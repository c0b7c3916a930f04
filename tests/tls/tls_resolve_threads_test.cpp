// TLS servers and connections by host name (looked up on the DNS pool, hence a *_threads_test), and cancelling a
// pending TLS connection: the callback form's ConnectHandle, and the task awaiting the TLS open_connection.
//
// No external network: "localhost" comes from the hosts file (the test server certificate names it), and
// name.invalid is NXDOMAIN by RFC 6761.
#include <netdb.h>

#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/net_util.hpp"
#include "support/pending_connect.hpp"
#include "support/server_fixture.hpp"
#include "support/test_certs.hpp"
#include "tulipa/dns.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"
#include "tulipa/tls_net.hpp"
#include "tulipa/tls_streams.hpp"

using namespace tulipa;
using namespace tulipa::test;

namespace {

class TlsResolveTest : public ServerFixture {};

TEST_F(TlsResolveTest, ServerAwaitedByNameEchoesALineOverTlsToAConnectionByName) {
  Future<Server> f = start_server_async(loop, echo_lines(), "localhost", 0, localhost_server());
  EXPECT_FALSE(f.done());  // a name: the answer comes from the DNS pool
  ASSERT_TRUE(run_until(loop, [&] { return f.done(); }));
  Server& s = keep(f.take_result());
  ASSERT_FALSE(s.sockets().empty());
  // By name on both sides: the certificate is checked against "localhost", the host connected to.
  std::string got = run_until_complete(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<std::string> {
    auto [reader, writer] = co_await open_connection(loop, "localhost", port, trusting_client());
    writer.write("tls by name\n");
    std::string line = (co_await reader.readline()).str();
    writer.close();
    co_await writer.wait_closed();
    co_return line;
  }(loop, s.sockets()[0].port()));
  EXPECT_EQ(got, "tls by name\n");
  EXPECT_EQ(clients, 1);
}

TEST_F(TlsResolveTest, TlsCreateServerAsyncByName) {
  Log& server_side = logs.emplace_back();
  Future<Server> f = create_server_async(loop, recorder_factory(server_side), "localhost", 0, localhost_server());
  ASSERT_TRUE(run_until(loop, [&] { return f.done(); }));
  Server& s = keep(f.take_result());
  Log& c = logs.emplace_back();
  bool done = false;
  Transport* transport = nullptr;
  ConnectHandle h = create_connection(loop, recorder_factory(c), "localhost", s.sockets().at(0).port(),
                                      trusting_client(), [&](Transport* t, std::exception_ptr e) {
                                        done = true;
                                        transport = t;
                                        EXPECT_FALSE(e);
                                      });
  EXPECT_TRUE(h.pending());
  ASSERT_TRUE(run_until(loop, [&] { return done; }));
  EXPECT_FALSE(h.pending());
  ASSERT_NE(transport, nullptr);
  ASSERT_NE(as_ssl_transport(*transport), nullptr);
  transport->write("hello");
  ASSERT_TRUE(run_until(loop, [&] { return server_side.received == "hello"; }));
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1; }));
}

TEST_F(TlsResolveTest, AnUnresolvableNameFailsWithAGaiError) {
  if (!invalid_name_fails_fast()) GTEST_SKIP() << "this resolver does not answer EAI_NONAME for name.invalid";
  Future<Server> f = start_server_async(loop, echo_lines(), "name.invalid", 0, localhost_server());
  ASSERT_TRUE(run_until(loop, [&] { return f.done(); }));
  EXPECT_THROW((void)f.take_result(), GaiError);
  int code = 0;
  run_until_complete(loop, [](EventLoop& loop, int& code) -> Coro<void> {
    try {
      (void)co_await open_connection(loop, "name.invalid", 443, trusting_client());
    } catch (const GaiError& e) {
      code = e.code();
    }
  }(loop, code));
  EXPECT_EQ(code, EAI_NONAME);
  EXPECT_EQ(clients, 0);
}

TEST_F(TlsResolveTest, TheSynchronousFormPointsOtherNamesToTheAsyncOne) {
  try {
    (void)start_server(loop, echo_lines(), "name.invalid", 0, localhost_server());
    ADD_FAILURE() << "start_server accepted a name it would have to look up";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("start_server_async"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(keep(start_server(loop, echo_lines(), "localhost", 0, localhost_server())).sockets().empty());
  // A client context is refused at once by the async form too.
  EXPECT_THROW((void)start_server_async(loop, echo_lines(), "localhost", 0, trusting_client()), std::invalid_argument);
}

// --- cancelling a pending TLS connection

TEST_F(TlsResolveTest, CancellingTheHandleWhileConnectingClosesTheSocketAndCallsNothing) {
  FullListener full;
  Log& c = logs.emplace_back();
  int calls = 0;
  auto before = open_sockets();
  ConnectHandle h = create_connection(
      loop, counting(c), "127.0.0.1", full.port, trusting_client(), [&](Transport*, std::exception_ptr) { ++calls; },
      ConnectOptions{}, SslOptions{.server_hostname = "localhost"});
  const std::string sock = new_socket(before);  // numeric: the socket is made before create_connection returns
  ASSERT_FALSE(sock.empty());
  EXPECT_TRUE(h.pending());
  EXPECT_TRUE(h.cancel());
  EXPECT_FALSE(is_open(sock));  // closed by cancel() itself
  EXPECT_FALSE(h.pending());
  settle(loop);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(factory_calls, 0);
  EXPECT_EQ(c.made, 0);
}

// Without the cancel path the socket would stay open, connecting, until the kernel gave up on the full listener.
TEST_F(TlsResolveTest, CancellingOpenConnectionWhileConnectingClosesTheSocket) {
  FullListener full;
  auto before = open_sockets();
  Task<void> task = create_task(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    (void)co_await open_connection(loop, "127.0.0.1", port, trusting_client(), {},
                                   SslOptions{.server_hostname = "localhost"});
    ADD_FAILURE() << "connected to a full listener";
  }(loop, full.port));
  ASSERT_TRUE(run_until(loop, [&] { return !new_socket(before).empty(); }));  // the task runs and connects
  const std::string sock = new_socket(before);
  task.cancel();
  ASSERT_TRUE(run_until(loop, [&] { return task.done(); }));
  EXPECT_TRUE(task.cancelled());
  EXPECT_FALSE(is_open(sock));
  EXPECT_TRUE(reported.empty());
}

TEST_F(TlsResolveTest, CancellingOpenConnectionWhileTheNameIsLookedUpConnectsNothing) {
  Log& server_side = logs.emplace_back();
  Server& s = keep(create_server(loop, recorder_factory(server_side), "127.0.0.1", 0, localhost_server()));
  const std::uint16_t port = s.sockets().at(0).port();
  Task<void> task;
  {
    BusyDnsPool busy;  // the lookup waits in the pool's queue until the gate opens
    task = create_task(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
      (void)co_await open_connection(loop, "localhost", port, trusting_client());
      ADD_FAILURE() << "connected after the cancellation";
    }(loop, port));
    settle(loop);  // the task starts and waits for the lookup
    EXPECT_FALSE(task.done());
    task.cancel();
    ASSERT_TRUE(run_until(loop, [&] { return task.done(); }));
    EXPECT_TRUE(task.cancelled());
  }
  // A lookup queued after the cancelled one answers once it was skipped (or ran and was dropped).
  Future<std::vector<AddrInfo>> later = getaddrinfo(loop, "localhost", port);
  ASSERT_TRUE(run_until(loop, [&] { return later.done(); }));
  settle(loop);
  EXPECT_EQ(s.active_connections(), 0u);
  EXPECT_EQ(server_side.made, 0);
}

}  // namespace
