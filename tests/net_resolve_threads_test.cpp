// Host names in create_connection / create_server_async (looked up on the DNS pool, hence a *_threads_test), and
// cancelling a pending connection: while its name is looked up, and while it connects.
//
// No external network: the names come from the hosts file ("localhost", or another name it maps to loopback), and
// the unresolvable one is under .invalid (RFC 6761), which the resolver answers NXDOMAIN for at once.
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>

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

// A name other than "localhost" that the hosts file maps to a loopback address ("ip6-localhost" on a stock Debian,
// or the machine's own name on some), or "" when there is none.
std::string hosts_file_loopback_name() {
  std::ifstream hosts("/etc/hosts");
  std::string line;
  std::string found;
  while (std::getline(hosts, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string ip, name;
    if (!(words >> ip)) continue;
    SocketAddress a;
    try {
      a = SocketAddress::parse(ip, 0);
    } catch (const std::invalid_argument&) {
      continue;
    }
    if (!is_loopback(a)) continue;
    while (words >> name) {
      if (name == "localhost" || name.find('.') != std::string::npos) continue;
      if (name == "ip6-localhost" || name == "ip6-loopback") return name;  // the stock ones first
      if (found.empty()) found = name;
    }
  }
  return found;
}

class ResolveTest : public ServerFixture {
 protected:
  ProtocolFactory echo() {
    return [] { return std::make_unique<Echo>(); };
  }
  // Runs the loop until the callbacks queued so far (and those they queue) have run.
  void run_pending() { settle(loop); }
};

struct ConnectResult {
  bool done = false;
  int calls = 0;
  Transport* transport = nullptr;
  std::exception_ptr error;
  ConnectCallback callback() {
    return [this](Transport* t, std::exception_ptr e) {
      done = true;
      ++calls;
      transport = t;
      error = e;
    };
  }
};

// Connects by name and checks the connection works both ways.
void expect_echo_by_name(EventLoop& loop, const std::string& name, std::uint16_t port, Log& c) {
  ConnectResult r;
  ConnectHandle h = create_connection(loop, recorder_factory(c), name, port, r.callback());
  EXPECT_TRUE(h.pending());  // a name: looked up on the DNS pool, so nothing can be known yet
  ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
  EXPECT_FALSE(h.pending());
  EXPECT_FALSE(h.cancel());  // over: nothing to cancel
  ASSERT_TRUE(r.transport) << (r.error ? "failed" : "no transport");
  EXPECT_TRUE(is_loopback(r.transport->peername())) << r.transport->peername().to_string();
  EXPECT_EQ(r.transport->peername().port(), port);
  r.transport->write("by name");
  ASSERT_TRUE(run_until(loop, [&] { return c.received == "by name"; }));
  r.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1; }));
}

// --- host names

TEST_F(ResolveTest, ConnectsToLocalhostThroughTheResolver) {
  // The server listens on every address "localhost" has (127.0.0.1, and ::1 where the hosts file lists it), so
  // whichever the resolver gives first is served.
  Server& s = keep(create_server(loop, echo(), "localhost", 0));
  expect_echo_by_name(loop, "localhost", port_of(s), log());
}

TEST_F(ResolveTest, TriesTheAddressesInTurn) {
  // Only 127.0.0.1 listens: when "localhost" also gives ::1 (first, by RFC 6724), that attempt is refused and the
  // next address is tried; when it does not, this is the plain case.
  Server& s = keep(create_server(loop, echo(), "127.0.0.1", 0));
  expect_echo_by_name(loop, "localhost", port_of(s), log());
}

TEST_F(ResolveTest, ConnectsToAnotherHostsFileName) {
  const std::string name = hosts_file_loopback_name();
  if (name.empty()) GTEST_SKIP() << "/etc/hosts maps no name but localhost to loopback";
  AddrInfoHints hints;
  hints.type = SOCK_STREAM;
  std::vector<AddrInfo> infos;
  try {
    infos = getaddrinfo_blocking(name, "", hints);
  } catch (const GaiError& e) {
    GTEST_SKIP() << name << " does not resolve here: " << e.what();
  }
  // Listen on exactly what the name gives (by name, through the async form), then connect by name.
  Future<Server> f = create_server_async(loop, echo(), name, 0);
  ASSERT_TRUE(run_until(loop, [&] { return f.done(); }));
  Server& s = keep(f.take_result());
  for (const auto& a : s.sockets()) EXPECT_TRUE(is_loopback(a)) << a.to_string();
  expect_echo_by_name(loop, name, port_of(s), log());
}

TEST_F(ResolveTest, ServerAsyncBindsEveryAddressOfANameOnce) {
  AddrInfoHints hints;
  hints.type = SOCK_STREAM;
  hints.flags = AI_PASSIVE;
  std::vector<SocketAddress> expected;
  for (const auto& ai : getaddrinfo_blocking("localhost", "", hints)) {
    bool seen = false;
    for (const auto& e : expected) seen = seen || e.host() == ai.address.host();
    if (!seen) expected.push_back(ai.address);
  }
  Future<Server> f = create_server_async(loop, echo(), "localhost", 0);
  EXPECT_FALSE(f.done());  // a name: the answer comes from the DNS pool
  ASSERT_TRUE(run_until(loop, [&] { return f.done(); }));
  Server& s = keep(f.take_result());
  std::vector<SocketAddress> socks = s.sockets();
  ASSERT_EQ(socks.size(), expected.size());
  for (std::size_t i = 0; i < socks.size(); ++i) {
    EXPECT_EQ(socks[i].host(), expected[i].host());
    EXPECT_EQ(socks[i].port(), socks[0].port());  // one port for all, though it was 0
    Log& c = log();
    Transport* t = connect_to(loop, socks[i], c);
    ASSERT_NE(t, nullptr) << socks[i].to_string();
    t->write("hi");
    ASSERT_TRUE(run_until(loop, [&] { return c.received == "hi"; }));
    t->close();
  }
}

TEST_F(ResolveTest, ServerAsyncWithANumericHostIsDoneAtOnce) {
  Future<Server> f = create_server_async(loop, echo(), "127.0.0.1", 0);
  ASSERT_TRUE(f.done());  // bound before returning: no lookup, no thread hop
  Server& s = keep(f.take_result());
  ASSERT_EQ(s.sockets().size(), 1u);
  // A binding error comes out of the future, as asyncio's raises from the await.
  Future<Server> again =
      create_server_async(loop, echo(), "127.0.0.1", port_of(s), ServerOptions{.reuse_address = false});
  ASSERT_TRUE(again.done());
  try {
    (void)again.take_result();
    ADD_FAILURE() << "a second bind to the same port succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
  }
  EXPECT_THROW((void)create_server_async(loop, nullptr, "127.0.0.1", 0), std::invalid_argument);
}

TEST_F(ResolveTest, TheSynchronousServerStillRefusesNamesItCannotWaitFor) {
  try {
    (void)create_server(loop, echo(), "name.invalid", 0);
    ADD_FAILURE() << "create_server accepted a name it would have to look up";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("create_server_async"), std::string::npos) << e.what();
  }
}

// --- names that do not resolve

// The error the tests expect for name.invalid is checked first (invalid_name_fails_fast), so that a resolver that
// cannot be asked at all (no name server here) skips rather than fails.

TEST_F(ResolveTest, AnUnresolvableNameGivesAGaiErrorNamingIt) {
  if (!invalid_name_fails_fast()) GTEST_SKIP() << "this resolver does not answer EAI_NONAME for name.invalid";
  Log& c = log();
  ConnectResult r;
  create_connection(loop, counting(c), "name.invalid", 80, r.callback());
  ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.transport, nullptr);
  EXPECT_EQ(factory_calls, 0);
  try {
    std::rethrow_exception(r.error);
  } catch (const GaiError& e) {
    EXPECT_EQ(e.code(), EAI_NONAME);
    EXPECT_NE(std::string(e.what()).find("name.invalid"), std::string::npos) << e.what();
  } catch (...) {
    ADD_FAILURE() << "not a GaiError";
  }

  // The Future form and the server's awaitable form fail the same way.
  Future<Transport*> fc = create_connection(loop, counting(c), "name.invalid", 80);
  Future<Server> fs = create_server_async(loop, echo(), "name.invalid", 0);
  ASSERT_TRUE(run_until(loop, [&] { return fc.done() && fs.done(); }));
  EXPECT_THROW((void)fc.result(), GaiError);
  EXPECT_THROW((void)fs.take_result(), GaiError);
  EXPECT_EQ(factory_calls, 0);
  EXPECT_TRUE(reported.empty());
}

// --- cancelling a pending connection

TEST_F(ResolveTest, CancellingWhileConnectingClosesTheSocketAndMakesNoProtocol) {
  FullListener full;
  Log& c = log();
  ConnectResult r;
  auto before = open_sockets();
  ConnectHandle h = create_connection(loop, counting(c), "127.0.0.1", full.port, r.callback());
  const std::string sock = new_socket(before);  // numeric: the socket is made before create_connection returns
  ASSERT_FALSE(sock.empty());
  EXPECT_TRUE(h.pending());
  EXPECT_TRUE(h.cancel());
  EXPECT_FALSE(is_open(sock));  // closed by cancel() itself
  EXPECT_FALSE(h.pending());
  EXPECT_FALSE(h.cancel());  // once
  run_pending();
  EXPECT_EQ(r.calls, 0);
  EXPECT_EQ(factory_calls, 0);
  EXPECT_EQ(c.made, 0);
}

TEST_F(ResolveTest, CancellingTheFutureWhileConnectingClosesTheSocketAndMakesNoProtocol) {
  FullListener full;
  Log& c = log();
  auto before = open_sockets();
  Future<Transport*> f = create_connection(loop, counting(c), "127.0.0.1", full.port);
  const std::string sock = new_socket(before);
  ASSERT_FALSE(sock.empty());
  EXPECT_TRUE(f.cancel());
  ASSERT_TRUE(run_until(loop, [&] { return !is_open(sock); }));  // on the next pass
  run_pending();
  EXPECT_TRUE(f.cancelled());
  EXPECT_EQ(factory_calls, 0);
  EXPECT_EQ(c.made, 0);
}

TEST_F(ResolveTest, CancellingATaskThatAwaitsAConnectionCancelsTheConnection) {
  FullListener full;
  Log& c = log();
  auto before = open_sockets();
  bool cancelled = false;
  Task<void> task =
      create_task(loop, [](EventLoop& loop, ProtocolFactory f, std::uint16_t port, bool& cancelled) -> Coro<void> {
        try {
          (void)co_await create_connection(loop, std::move(f), "127.0.0.1", port);
        } catch (const CancelledError&) {
          cancelled = true;
          throw;
        }
      }(loop, counting(c), full.port, cancelled));
  ASSERT_TRUE(run_until(loop, [&] { return !new_socket(before).empty(); }));  // the task runs and connects
  const std::string sock = new_socket(before);
  task.cancel();
  ASSERT_TRUE(run_until(loop, [&] { return task.done() && !is_open(sock); }));
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(factory_calls, 0);
}

TEST_F(ResolveTest, CancellingWhileTheNameIsLookedUpDropsTheAnswer) {
  Server& s = keep(create_server(loop, echo(), "127.0.0.1", 0));
  Log& c = log();
  ConnectResult r;
  Future<Transport*> f{nullptr};
  Future<Server> fs{nullptr};
  {
    BusyDnsPool busy;  // the lookups below wait in the pool's queue until the gate opens
    auto before = open_sockets();
    ConnectHandle h = create_connection(loop, counting(c), "localhost", port_of(s), r.callback());
    f = create_connection(loop, counting(c), "localhost", port_of(s));
    fs = create_server_async(loop, echo(), "localhost", 0);
    EXPECT_TRUE(new_socket(before).empty());  // nothing to connect yet
    run_pending();
    EXPECT_TRUE(h.pending());
    EXPECT_FALSE(f.done());
    EXPECT_FALSE(fs.done());
    EXPECT_TRUE(h.cancel());
    EXPECT_FALSE(h.pending());
    EXPECT_TRUE(f.cancel());
    EXPECT_TRUE(fs.cancel());
  }
  // The pool runs again. A lookup queued after the cancelled ones answers once they were skipped (or ran and were
  // dropped): wait for it, then for every callback it left.
  Future<std::vector<AddrInfo>> later = getaddrinfo(loop, "localhost", port_of(s));
  ASSERT_TRUE(run_until(loop, [&] { return later.done(); }));
  run_pending();
  EXPECT_EQ(r.calls, 0);
  EXPECT_EQ(factory_calls, 0);
  EXPECT_EQ(c.made, 0);
  EXPECT_EQ(s.active_connections(), 0u);
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(fs.cancelled());
  EXPECT_TRUE(reported.empty());
  // The same name connects fine afterwards.
  expect_echo_by_name(loop, "localhost", port_of(s), log());
}

TEST_F(ResolveTest, CancelFromTheCompletionCallbackIsANoOp) {
  Server& s = keep(create_server(loop, echo(), "127.0.0.1", 0));
  Log& c = log();
  ConnectHandle h;
  bool cancelled_inside = true;
  bool done = false;
  h = create_connection(loop, recorder_factory(c), "127.0.0.1", port_of(s), [&](Transport* t, std::exception_ptr) {
    cancelled_inside = h.cancel();
    done = true;
    if (t) t->close();
  });
  ASSERT_TRUE(run_until(loop, [&] { return done && c.lost == 1; }));
  EXPECT_FALSE(cancelled_inside);
  EXPECT_EQ(c.made, 1);
}

// --- open_connection, which connects through create_connection

TEST_F(ResolveTest, OpenConnectionByNameToAServerAwaitedByName) {
  std::string got;
  Task<void> task = create_task(loop, [](EventLoop& loop, std::string& got) -> Coro<void> {
    // asyncio's `server = await loop.create_server(...)`, then `await open_connection(...)`, both by name.
    Server s = co_await create_server_async(loop, [] { return std::make_unique<Echo>(); }, "localhost", 0);
    auto [r, w] = co_await open_connection(loop, "localhost", s.sockets().at(0).port());
    w.write("streams by name");
    got = (co_await r.readexactly(15)).str();
    w.close();
    s.close();
    s.abort_clients();
  }(loop, got));
  ASSERT_TRUE(run_until(loop, [&] { return task.done(); }));
  task.result();
  EXPECT_EQ(got, "streams by name");
}

TEST_F(ResolveTest, OpenConnectionToAnUnresolvableNameThrowsGaiError) {
  if (!invalid_name_fails_fast()) GTEST_SKIP() << "this resolver does not answer EAI_NONAME for name.invalid";
  int code = 0;
  Task<void> task = create_task(loop, [](EventLoop& loop, int& code) -> Coro<void> {
    try {
      (void)co_await open_connection(loop, "name.invalid", 80);
    } catch (const GaiError& e) {
      code = e.code();
    }
  }(loop, code));
  ASSERT_TRUE(run_until(loop, [&] { return task.done(); }));
  EXPECT_EQ(code, EAI_NONAME);
}

// Without the cancel path the socket would stay open, connecting, until the kernel gave up on the full listener.
TEST_F(ResolveTest, CancellingOpenConnectionWhileConnectingClosesTheSocket) {
  FullListener full;
  auto before = open_sockets();
  Task<void> task = create_task(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    (void)co_await open_connection(loop, "127.0.0.1", port);
    ADD_FAILURE() << "connected to a full listener";
  }(loop, full.port));
  ASSERT_TRUE(run_until(loop, [&] { return !new_socket(before).empty(); }));
  const std::string sock = new_socket(before);
  task.cancel();
  ASSERT_TRUE(run_until(loop, [&] { return task.done(); }));
  EXPECT_TRUE(task.cancelled());
  EXPECT_FALSE(is_open(sock));
}

TEST_F(ResolveTest, CancellingOpenConnectionWhileTheNameIsLookedUpConnectsNothing) {
  Log& server_side = log();
  Server& s = keep(create_server(loop, recorder_factory(server_side), "127.0.0.1", 0));
  Task<void> task;
  {
    BusyDnsPool busy;
    task = create_task(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
      (void)co_await open_connection(loop, "localhost", port);
      ADD_FAILURE() << "connected after the cancellation";
    }(loop, port_of(s)));
    run_pending();  // the task starts and waits for the lookup
    EXPECT_FALSE(task.done());
    task.cancel();
    ASSERT_TRUE(run_until(loop, [&] { return task.done(); }));
    EXPECT_TRUE(task.cancelled());
  }
  Future<std::vector<AddrInfo>> later = getaddrinfo(loop, "localhost", port_of(s));
  ASSERT_TRUE(run_until(loop, [&] { return later.done(); }));
  run_pending();
  EXPECT_EQ(server_side.made, 0);
  EXPECT_EQ(s.active_connections(), 0u);
}

}  // namespace
