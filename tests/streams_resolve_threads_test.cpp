// start_server_async: the streams server by host name, looked up on the DNS pool (hence a *_threads_test), and the
// synchronous start_server's refusal of names it cannot wait for.
//
// No external network: "localhost" comes from the hosts file and name.invalid is NXDOMAIN by RFC 6761.
#include <netdb.h>

#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "support/net_util.hpp"
#include "support/pending_connect.hpp"
#include "support/server_fixture.hpp"
#include "tulipa/dns.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/task.hpp"

using namespace tulipa;
using namespace tulipa::test;

namespace {

class StreamsResolveTest : public ServerFixture {};

// The addresses getaddrinfo gives "localhost" for a passive TCP socket, each once.
std::vector<std::string> localhost_hosts() {
  AddrInfoHints hints;
  hints.type = SOCK_STREAM;
  hints.flags = AI_PASSIVE;
  std::vector<std::string> out;
  for (const auto& ai : getaddrinfo_blocking("localhost", "", hints)) {
    bool seen = false;
    for (const auto& h : out) seen = seen || h == ai.address.host();
    if (!seen) out.push_back(ai.address.host());
  }
  return out;
}

TEST_F(StreamsResolveTest, ServerAwaitedByNameEchoesALineToAConnectionByName) {
  Future<Server> f = start_server_async(loop, echo_lines(), "localhost", 0);
  EXPECT_FALSE(f.done());  // a name: the answer comes from the DNS pool
  ASSERT_TRUE(run_until(loop, [&] { return f.done(); }));
  Server& s = keep(f.take_result());
  // Every address of the name, once, on one port.
  std::vector<std::string> expected = localhost_hosts();
  std::vector<SocketAddress> socks = s.sockets();
  ASSERT_EQ(socks.size(), expected.size());
  for (std::size_t i = 0; i < socks.size(); ++i) {
    EXPECT_EQ(socks[i].host(), expected[i]);
    EXPECT_TRUE(is_loopback(socks[i])) << socks[i].to_string();
    EXPECT_EQ(socks[i].port(), socks[0].port());
  }

  std::string got = run_until_complete(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<std::string> {
    auto [reader, writer] = co_await open_connection(loop, "localhost", port);
    writer.write("a line by name\n");
    std::string line = (co_await reader.readline()).str();
    writer.close();
    co_await writer.wait_closed();
    co_return line;
  }(loop, socks[0].port()));
  EXPECT_EQ(got, "a line by name\n");
  EXPECT_EQ(clients, 1);
  EXPECT_TRUE(reported.empty());
}

TEST_F(StreamsResolveTest, AwaitedInsideACoroutineAsAsyncioDoes) {
  // `server = await asyncio.start_server(cb, "localhost", 0)` then a client, all in one task.
  std::string got = run_until_complete(loop, [](EventLoop& loop, ClientConnected cb) -> Coro<std::string> {
    Server server = co_await start_server_async(loop, std::move(cb), "localhost", 0);
    auto [reader, writer] = co_await open_connection(loop, "localhost", server.sockets().at(0).port());
    writer.write("inside\n");
    std::string line = (co_await reader.readline()).str();
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
    co_return line;
  }(loop, echo_lines()));
  EXPECT_EQ(got, "inside\n");
}

TEST_F(StreamsResolveTest, ANumericHostIsBoundBeforeTheCallReturns) {
  Future<Server> f = start_server_async(loop, echo_lines(), "127.0.0.1", 0);
  ASSERT_TRUE(f.done());  // no lookup, no thread hop
  Server& s = keep(f.take_result());
  ASSERT_EQ(s.sockets().size(), 1u);
  // A binding error comes out of the future.
  Future<Server> again = start_server_async(loop, echo_lines(), "127.0.0.1", s.sockets()[0].port(),
                                            StreamServerOptions{.server = ServerOptions{.reuse_address = false}});
  ASSERT_TRUE(again.done());
  try {
    (void)again.take_result();
    ADD_FAILURE() << "a second bind to the same port succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
  }
  // Bad arguments are the caller's error, thrown at once rather than out of the future.
  EXPECT_THROW((void)start_server_async(loop, nullptr, "localhost", 0), std::invalid_argument);
  EXPECT_THROW((void)start_server_async(loop, echo_lines(), "localhost", 0, StreamServerOptions{.limit = 0}),
               std::invalid_argument);
}

TEST_F(StreamsResolveTest, AnUnresolvableNameFailsWithAGaiErrorNamingIt) {
  if (!invalid_name_fails_fast()) GTEST_SKIP() << "this resolver does not answer EAI_NONAME for name.invalid";
  auto before = open_sockets();
  Future<Server> f = start_server_async(loop, echo_lines(), "name.invalid", 0);
  ASSERT_TRUE(run_until(loop, [&] { return f.done(); }));
  try {
    (void)f.take_result();
    ADD_FAILURE() << "name.invalid resolved";
  } catch (const GaiError& e) {
    EXPECT_EQ(e.code(), EAI_NONAME);
    EXPECT_NE(std::string(e.what()).find("name.invalid"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(new_sockets(before).empty());
  EXPECT_EQ(clients, 0);
  EXPECT_TRUE(reported.empty());
}

TEST_F(StreamsResolveTest, TheSynchronousFormPointsOtherNamesToTheAsyncOne) {
  try {
    (void)start_server(loop, echo_lines(), "name.invalid", 0);
    ADD_FAILURE() << "start_server accepted a name it would have to look up";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("start_server_async"), std::string::npos) << e.what();
  }
  // What it can answer without waiting still works: "localhost" (from the hosts file) and numeric hosts.
  Server& s = keep(start_server(loop, echo_lines(), "localhost", 0));
  EXPECT_EQ(s.sockets().size(), localhost_hosts().size());
  EXPECT_EQ(keep(start_server(loop, echo_lines(), "127.0.0.1", 0)).sockets().size(), 1u);
}

TEST_F(StreamsResolveTest, CancellingWhileTheNameIsLookedUpBindsNothing) {
  Future<Server> f{nullptr};
  auto before = open_sockets();
  {
    BusyDnsPool busy;  // the lookup waits in the pool's queue until the gate opens
    f = start_server_async(loop, echo_lines(), "localhost", 0);
    settle(loop);
    EXPECT_FALSE(f.done());
    EXPECT_TRUE(f.cancel());
  }
  // A lookup queued after the cancelled one answers once it was skipped (or ran and was dropped).
  Future<std::vector<AddrInfo>> later = getaddrinfo(loop, "localhost", 80);
  ASSERT_TRUE(run_until(loop, [&] { return later.done(); }));
  settle(loop);
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(new_sockets(before).empty()) << "a socket was bound after the cancellation";
  EXPECT_TRUE(reported.empty());
}

}  // namespace
