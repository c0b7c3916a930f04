// Cancelling a TLS connection while its handshake runs: the callback form's ConnectHandle and the task awaiting the
// TLS open_connection. The "TLS server" here is a plain TCP server whose protocol only records what it gets: it
// accepts the connection, receives the ClientHello and never answers, so the client's handshake stays pending
// (until its 60-second timeout) for as long as the test needs. That the ClientHello arrived is the event that says
// the TCP stage is over and the handshake runs.
// (Cancelling during the lookup or the TCP connect: tls_resolve_threads_test.cpp.)
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/net_util.hpp"
#include "support/pending_connect.hpp"
#include "support/server_fixture.hpp"
#include "support/test_certs.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"
#include "tulipa/tls_net.hpp"
#include "tulipa/tls_streams.hpp"

using namespace tulipa;
using namespace tulipa::test;

namespace {

// The socket behind one of our descriptors, by inode name as open_sockets() gives them.
std::string socket_of(int fd) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec).string();
}

class TlsCancelTest : public ServerFixture {
 protected:
  // A listener that takes TCP connections and never speaks TLS; `log` sees the ClientHello.
  std::uint16_t silent_server(Log& log) {
    Server& s = keep(create_server(loop, recorder_factory(log), "127.0.0.1", 0));
    return s.sockets().at(0).port();
  }
};

TEST_F(TlsCancelTest, CancellingTheHandleDuringTheHandshakeClosesTheSocketAndTellsNoOne) {
  Log& server_side = logs.emplace_back();
  const std::uint16_t port = silent_server(server_side);
  Log& c = logs.emplace_back();
  int calls = 0;
  auto sentinel = std::make_shared<int>(0);  // owned by `done`: expires when `done` is destroyed
  std::weak_ptr<int> done_alive = sentinel;
  auto before = open_sockets();
  ConnectHandle h = create_connection(
      loop, counting(c), "127.0.0.1", port, trusting_client(),
      [&calls, sentinel = std::move(sentinel)](Transport*, std::exception_ptr) { ++calls; }, ConnectOptions{},
      SslOptions{.server_hostname = "localhost"});
  const std::string sock = new_socket(before);  // numeric: the socket is made before create_connection returns
  ASSERT_FALSE(sock.empty());
  ASSERT_TRUE(run_until(loop, [&] { return !server_side.received.empty(); }));  // the ClientHello: handshaking
  EXPECT_EQ(factory_calls, 1);  // the protocol exists (the TLS layer owns it) but has not been told anything
  EXPECT_TRUE(h.pending());
  EXPECT_TRUE(h.cancel());
  EXPECT_FALSE(h.pending());
  EXPECT_FALSE(h.cancel());                                             // once only
  EXPECT_TRUE(done_alive.expired());                                    // `done` went with the cancel, uncalled
  ASSERT_TRUE(run_until(loop, [&] { return !is_open(sock); }));         // aborted: closed on the next pass, not in 60 s
  ASSERT_TRUE(run_until(loop, [&] { return server_side.lost == 1; }));  // the server sees the connection go
  settle(loop);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(c.made, 0);
  EXPECT_EQ(c.lost, 0);
  EXPECT_TRUE(reported.empty());
}

TEST_F(TlsCancelTest, CancellingOpenConnectionDuringTheHandshakeClosesTheSocket) {
  Log& server_side = logs.emplace_back();
  const std::uint16_t port = silent_server(server_side);
  auto before = open_sockets();
  bool resumed = false;
  Task<void> task = create_task(loop, [](EventLoop& loop, std::uint16_t port, bool& resumed) -> Coro<void> {
    (void)co_await open_connection(loop, "127.0.0.1", port, trusting_client(), {},
                                   SslOptions{.server_hostname = "localhost"});
    resumed = true;
  }(loop, port, resumed));
  ASSERT_TRUE(run_until(loop, [&] { return !server_side.received.empty(); }));  // the ClientHello: handshaking
  // Two new sockets: the server's accepted one and the client's.
  auto fresh = new_sockets(before);
  ASSERT_EQ(fresh.size(), 2u);
  ASSERT_NE(server_side.transport, nullptr);
  const std::string accepted = socket_of(server_side.transport->fd());
  const std::string sock = fresh[0] == accepted ? fresh[1] : fresh[0];
  ASSERT_NE(sock, accepted);
  task.cancel();
  ASSERT_TRUE(run_until(loop, [&] { return task.done(); }));
  EXPECT_TRUE(task.cancelled());
  EXPECT_FALSE(resumed);
  ASSERT_TRUE(run_until(loop, [&] { return !is_open(sock); }));
  ASSERT_TRUE(run_until(loop, [&] { return server_side.lost == 1; }));
  settle(loop);
  EXPECT_TRUE(reported.empty());
}

// Once `done` ran the attempt is over: the handle is inert and the connection is the caller's.
TEST_F(TlsCancelTest, AfterTheHandshakeTheHandleIsInert) {
  Log& server_side = logs.emplace_back();
  Server& s =
      servers.emplace_back(create_server(loop, recorder_factory(server_side), "127.0.0.1", 0, localhost_server()));
  Log& c = logs.emplace_back();
  Transport* transport = nullptr;
  ConnectHandle h = create_connection(
      loop, counting(c), "127.0.0.1", s.sockets().at(0).port(), trusting_client(),
      [&](Transport* t, std::exception_ptr e) {
        EXPECT_FALSE(e);
        transport = t;
      },
      ConnectOptions{}, SslOptions{.server_hostname = "localhost"});
  ASSERT_TRUE(run_until(loop, [&] { return server_side.made == 1; }));  // the server finished its handshake
  ASSERT_TRUE(run_until(loop, [&] { return transport != nullptr; }));
  EXPECT_FALSE(h.pending());
  EXPECT_FALSE(h.cancel());
  transport->write("still open");
  ASSERT_TRUE(run_until(loop, [&] { return server_side.received == "still open"; }));
  EXPECT_EQ(c.made, 1);
  EXPECT_EQ(c.lost, 0);
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1; }));
}

// The protocol's connection_made runs just before `done`: a cancel() from there still stops the attempt, so
// `done` never runs, and the protocol, told it was connected, is told the connection went.
TEST_F(TlsCancelTest, CancellingFromTheProtocolsConnectionMadeAbortsTheConnection) {
  Log& server_side = logs.emplace_back();
  Server& s =
      servers.emplace_back(create_server(loop, recorder_factory(server_side), "127.0.0.1", 0, localhost_server()));
  Log& c = logs.emplace_back();
  int calls = 0;
  ConnectHandle h;
  bool cancelled = false;
  c.on_made = [&](Log&) { cancelled = h.cancel(); };
  h = create_connection(
      loop, counting(c), "127.0.0.1", s.sockets().at(0).port(), trusting_client(),
      [&](Transport*, std::exception_ptr) { ++calls; }, ConnectOptions{}, SslOptions{.server_hostname = "localhost"});
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1; }));
  EXPECT_TRUE(cancelled);
  EXPECT_FALSE(h.pending());
  settle(loop);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(c.made, 1);
  EXPECT_TRUE(reported.empty());
}

}  // namespace
