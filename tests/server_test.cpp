// create_server / create_connection over loopback: addresses and families, serving and closing, many connections
// at once, and connection errors.
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <memory>
#include <stdexcept>
#include <system_error>

#include <gtest/gtest.h>

#include "net/server_core.hpp"
#include "support/net_util.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

using namespace tulipa;
using namespace tulipa::test;

namespace {

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() {
    loop.set_exception_handler([this](EventLoop&, const ErrorContext& c) { reported.push_back(c.message); });
  }
  ~ServerTest() override {
    for (Server* s : servers) {
      s->close();
      s->abort_clients();
    }
    settle(loop);
  }
  Log& log() { return logs.emplace_back(); }
  Server& keep(Server s) {
    auto& kept = owned.emplace_back(std::move(s));
    servers.push_back(&kept);
    return kept;
  }
  ProtocolFactory echo() {
    return [] { return std::make_unique<Echo>(); };
  }

  std::deque<Log> logs;
  EventLoop loop;
  std::deque<Server> owned;
  std::vector<Server*> servers;
  std::vector<std::string> reported;
};

bool has_ipv6_loopback() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  SocketAddress a = SocketAddress::parse("::1", 0);
  bool ok = ::bind(fd, static_cast<const sockaddr*>(a.data()), a.size()) == 0;
  ::close(fd);
  return ok;
}

TEST_F(ServerTest, EchoOverIpv6Loopback) {
  if (!has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  Server& s = keep(create_server(loop, echo(), "::1", 0));
  ASSERT_EQ(s.sockets().size(), 1u);
  EXPECT_EQ(s.sockets()[0].family(), SocketAddress::Family::ipv6);
  Log& c = log();
  Transport* t = connect_to(loop, s.sockets()[0], c);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->peername().host(), "::1");
  t->write("six");
  ASSERT_TRUE(run_until(loop, [&] { return c.received == "six"; }));
  t->close();
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1; }));
}

// "localhost" resolves to 127.0.0.1 and ::1: one listening socket each, on the same port.
TEST_F(ServerTest, LocalhostListensOnBothFamiliesWithOnePort) {
  Server& s = keep(create_server(loop, echo(), "localhost", 0));
  std::vector<SocketAddress> socks = s.sockets();
  ASSERT_GE(socks.size(), 1u);
  for (const SocketAddress& a : socks) {
    EXPECT_EQ(a.port(), socks[0].port());
    Log& c = log();
    Transport* t = connect_to(loop, a, c);
    ASSERT_NE(t, nullptr) << a.to_string();
    t->write("hi");
    ASSERT_TRUE(run_until(loop, [&] { return c.received == "hi"; }));
    t->close();
  }
  // As many sockets as the hosts file has addresses for localhost (127.0.0.1, and ::1 where it is listed).
  EXPECT_EQ(socks.size(), resolve_address("localhost", 0, true).size());
}

// "" is every interface: 0.0.0.0 and :: (IPV6_V6ONLY, so both can bind), on one port; reachable through either
// loopback address.
TEST_F(ServerTest, EmptyHostListensOnIpv4AndIpv6) {
  if (!has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  Server& s = keep(create_server(loop, echo(), "", 0));
  std::vector<SocketAddress> socks = s.sockets();
  ASSERT_EQ(socks.size(), 2u);
  EXPECT_EQ(socks[0].family(), SocketAddress::Family::ipv4);
  EXPECT_EQ(socks[1].family(), SocketAddress::Family::ipv6);
  EXPECT_EQ(socks[0].port(), socks[1].port());
  for (const char* host : {"127.0.0.1", "::1"}) {
    Log& c = log();
    Transport* t = connect_to(loop, SocketAddress::parse(host, socks[0].port()), c);
    ASSERT_NE(t, nullptr) << host;
    t->write(host);
    ASSERT_TRUE(run_until(loop, [&] { return c.received == host; }));
    t->close();
  }
}

TEST_F(ServerTest, StartServingLaterAndCloseStopsListening) {
  ServerOptions o;
  o.start_serving = false;
  Log& sl = log();
  Server& s = keep(create_server(loop, recorder_factory(sl), "127.0.0.1", 0, o));
  EXPECT_FALSE(s.is_serving());
  SocketAddress addr = s.sockets().at(0);
  // The kernel completes the handshake from the backlog; the server only accepts once serving.
  int fd = raw_connect(addr);
  Log& probe = log();
  Server& other = keep(create_server(loop, echo(), "127.0.0.1", 0));
  Transport* p = connect_to(loop, other.sockets()[0], probe);
  ASSERT_NE(p, nullptr);
  p->write("x");
  ASSERT_TRUE(run_until(loop, [&] { return probe.received == "x"; }));
  EXPECT_EQ(sl.made, 0);
  s.start_serving();
  EXPECT_TRUE(s.is_serving());
  ASSERT_TRUE(run_until(loop, [&] { return sl.made == 1; }));

  bool closed = false;
  s.wait_closed([&] { closed = true; });
  s.close();
  EXPECT_FALSE(s.is_serving());
  EXPECT_TRUE(s.sockets().empty());
  EXPECT_THROW(s.start_serving(), std::logic_error);
  // Closing the server leaves its connection alone; wait_closed waits for it.
  settle(loop);
  EXPECT_FALSE(closed);
  EXPECT_EQ(s.active_connections(), 1u);
  std::exception_ptr err;
  Log& refused = log();
  EXPECT_EQ(connect_to(loop, addr, refused, &err), nullptr);
  ::close(fd);
  ASSERT_TRUE(run_until(loop, [&] { return closed; }));
  EXPECT_EQ(sl.lost, 1);
  p->close();
}

TEST_F(ServerTest, CloseClientsFlushesAndEndsEveryConnection) {
  Log& sl = log();
  sl.on_made = [](Log& l) { l.transport->write("bye"); };
  Server& s = keep(create_server(loop, recorder_factory(sl), "127.0.0.1", 0));
  Log& a = log();
  Log& b = log();
  a.keep_open_on_eof = b.keep_open_on_eof = true;
  ASSERT_NE(connect_to(loop, s.sockets()[0], a), nullptr);
  ASSERT_NE(connect_to(loop, s.sockets()[0], b), nullptr);
  ASSERT_TRUE(run_until(loop, [&] { return s.active_connections() == 2; }));
  s.close_clients();
  ASSERT_TRUE(run_until(loop, [&] { return a.eofs == 1 && b.eofs == 1 && s.active_connections() == 0; }));
  EXPECT_EQ(a.received, "bye");
  EXPECT_EQ(b.received, "bye");
  a.transport->close();
  b.transport->close();
}

TEST_F(ServerTest, ConnectionRefusedGoesToTheCallback) {
  // A port nobody listens on: bind one, read its number, close it.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  SocketAddress a = SocketAddress::parse("127.0.0.1", 0);
  ASSERT_EQ(::bind(fd, static_cast<const sockaddr*>(a.data()), a.size()), 0);
  socklen_t len = SocketAddress::capacity;
  ::getsockname(fd, static_cast<sockaddr*>(a.data()), &len);
  ::close(fd);
  Log& c = log();
  std::exception_ptr err;
  EXPECT_EQ(connect_to(loop, a, c, &err), nullptr);
  ASSERT_NE(err, nullptr);
  try {
    std::rethrow_exception(err);
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);
    EXPECT_NE(std::string(e.what()).find(a.to_string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(c.made, 0);
}

TEST_F(ServerTest, BadArgumentsAreRefusedClearly) {
  EXPECT_THROW(create_server(loop, echo(), "example.invalid", 0), std::invalid_argument);
  EXPECT_THROW(create_server(loop, nullptr, "127.0.0.1", 0), std::invalid_argument);
  EXPECT_THROW(create_connection(loop, echo(), "", 1, [](Transport*, std::exception_ptr) {}), std::invalid_argument);
  Server& s = keep(create_server(loop, echo(), "127.0.0.1", 0));
  try {
    create_server(loop, echo(), "127.0.0.1", port_of(s), ServerOptions{.reuse_address = false});
    ADD_FAILURE() << "a second bind to the same port succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
  }
}

TEST_F(ServerTest, ReusePortLetsTwoServersShareAPort) {
  ServerOptions o;
  o.reuse_port = true;
  Server& a = keep(create_server(loop, echo(), "127.0.0.1", 0, o));
  Server& b = keep(create_server(loop, echo(), "127.0.0.1", port_of(a), o));
  EXPECT_EQ(port_of(a), port_of(b));
}

TEST_F(ServerTest, AFailingFactoryCostsOneConnection) {
  int calls = 0;
  Server& s = keep(create_server(
      loop,
      [&]() -> std::unique_ptr<StreamProtocol> {
        if (++calls == 1) throw std::runtime_error("no");
        return std::make_unique<Echo>();
      },
      "127.0.0.1", 0));
  int fd1 = raw_connect(s.sockets()[0]);
  EXPECT_EQ(raw_read_to_eof(loop, fd1), "");
  ASSERT_EQ(reported.size(), 1u);
  Log& c = log();
  Transport* t = connect_to(loop, s.sockets()[0], c);
  ASSERT_NE(t, nullptr);
  t->write("ok");
  ASSERT_TRUE(run_until(loop, [&] { return c.received == "ok"; }));
  t->close();
  ::close(fd1);
}

// 5,000 concurrent connections through one server, every one echoing its own message. Both ends live in this
// process, so it needs 10,000 descriptors: the test raises its soft limit to the hard limit if it must.
TEST_F(ServerTest, FiveThousandConcurrentConnections) {
  constexpr int n = 5000;
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2 * n + 100) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 2 * n + 100);
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < 2 * n + 100) GTEST_SKIP() << "RLIMIT_NOFILE hard limit too low: " << rl.rlim_max;
  ServerOptions o;
  o.backlog = 4096;
  Server& s = keep(create_server(loop, echo(), "127.0.0.1", 0, o));
  std::deque<Log> clients;
  std::vector<Transport*> transports(n, nullptr);
  int connected = 0, failed = 0;
  for (int i = 0; i < n; ++i) {
    Log& c = clients.emplace_back();
    create_connection(loop, recorder_factory(c), "127.0.0.1", port_of(s), [&, i](Transport* t, std::exception_ptr e) {
      if (e) ++failed;
      transports[i] = t;
      ++connected;
    });
  }
  ASSERT_TRUE(run_until(loop, [&] { return connected == n; }, std::chrono::seconds(120)));
  ASSERT_EQ(failed, 0);
  ASSERT_TRUE(run_until(loop, [&] { return s.active_connections() == std::size_t(n); }, std::chrono::seconds(120)));
  for (int i = 0; i < n; ++i) transports[i]->write("message " + std::to_string(i));
  ASSERT_TRUE(run_until(
      loop,
      [&] {
        int complete = 0;
        for (int i = 0; i < n; ++i) complete += clients[i].received == "message " + std::to_string(i);
        return complete == n;
      },
      std::chrono::seconds(120)));
  for (auto* t : transports) t->close();
  ASSERT_TRUE(run_until(loop, [&] { return s.active_connections() == 0; }, std::chrono::seconds(120)));
  int lost = 0;
  for (auto& c : clients) lost += c.lost;
  EXPECT_EQ(lost, n);
  EXPECT_TRUE(reported.empty());
}

TEST(SocketAddressTest, ParsesAndPrints) {
  SocketAddress a = SocketAddress::parse("127.0.0.1", 8080);
  EXPECT_EQ(a.family(), SocketAddress::Family::ipv4);
  EXPECT_EQ(a.to_string(), "127.0.0.1:8080");
  SocketAddress b = SocketAddress::parse("::1", 443);
  EXPECT_EQ(b.to_string(), "[::1]:443");
  EXPECT_EQ(b.port(), 443);
  SocketAddress u = SocketAddress::unix_path("/tmp/x.sock");
  EXPECT_EQ(u.family(), SocketAddress::Family::unix_path);
  EXPECT_EQ(u.to_string(), "/tmp/x.sock");
  EXPECT_EQ(SocketAddress::unix_path(std::string_view("\0abstract", 9)).host(), "@abstract");
  EXPECT_THROW(SocketAddress::parse("localhost", 1), std::invalid_argument);
  EXPECT_THROW(SocketAddress::unix_path(std::string(200, 'p')), std::invalid_argument);
  EXPECT_TRUE(SocketAddress().empty());
  EXPECT_EQ(resolve_address("[::1]", 5, false).at(0), SocketAddress::parse("::1", 5));
  EXPECT_EQ(resolve_address("", 7, true).size(), 2u);
  EXPECT_THROW(resolve_address("", 7, false), std::invalid_argument);
}

// Found by fuzz/address_fuzz.cpp: the C calls underneath stop at a NUL, so a suffix after one went unseen.
TEST(SocketAddressTest, RefusesANulInside) {
  using namespace std::literals;
  EXPECT_THROW(SocketAddress::parse("127.0.0.1\0junk"sv, 1), std::invalid_argument);
  EXPECT_THROW(SocketAddress::parse("::1\0junk"sv, 1), std::invalid_argument);
  EXPECT_THROW(SocketAddress::parse("fe80::1%lo\0x"sv, 1), std::invalid_argument);
  EXPECT_THROW(SocketAddress::unix_path("/tmp/a\0b"sv), std::invalid_argument);
  EXPECT_EQ(SocketAddress::unix_path("\0a\0b"sv).host(), "@a"s + '\0' + "b");  // abstract names may hold NULs
}

}  // namespace

// asyncio's backlog of 100 loses connections under a connect burst (SYN cookies, then drops): the default is the
// system's limit.
TEST(ServerOptionsTest, BacklogDefaultsToTheSystemsSomaxconn) {
  int somaxconn = 0;
  if (std::FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "r")) {
    ASSERT_EQ(std::fscanf(f, "%d", &somaxconn), 1);
    std::fclose(f);
  }
  ASSERT_GT(somaxconn, 0);
  EventLoop loop;
  detail::ServerCore defaults(loop, [] { return std::unique_ptr<StreamProtocol>(); }, ServerOptions{});
  EXPECT_EQ(defaults.options.backlog, somaxconn);
  EXPECT_EQ(defaults.options.max_accepts_per_wakeup, std::min(somaxconn, 100));
  ServerOptions mine;
  mine.backlog = 10;
  detail::ServerCore chosen(loop, [] { return std::unique_ptr<StreamProtocol>(); }, mine);
  EXPECT_EQ(chosen.options.backlog, 10);
  EXPECT_EQ(chosen.options.max_accepts_per_wakeup, 10);
}
