// create_datagram_endpoint over UDP loopback (IPv4 and IPv6) and Unix datagram sockets.
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "support/net_util.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

using namespace tulipa;
using namespace tulipa::test;

namespace {

struct Dgram {
  DatagramTransport* transport = nullptr;
  std::vector<std::pair<std::string, SocketAddress>> got;
  std::vector<std::error_code> errors;
  int lost = 0;
  bool echo = false;
};

struct DgramRecorder : DatagramProtocol {
  explicit DgramRecorder(Dgram& d) : d(d) {}
  Dgram& d;
  void connection_made(DatagramTransport& t) override { d.transport = &t; }
  void datagram_received(std::span<const std::byte> data, const SocketAddress& from) override {
    d.got.emplace_back(text(data), from);
    if (d.echo) d.transport->sendto(data, from);
  }
  void error_received(std::error_code e) override { d.errors.push_back(e); }
  void connection_lost(std::exception_ptr) override { ++d.lost; }
};

class DatagramTest : public ::testing::Test {
 public:
  ~DatagramTest() override {
    for (auto& d : ds) {
      if (d.transport && d.lost == 0) d.transport->abort();
    }
    settle(loop);
  }
  Dgram& make() { return ds.emplace_back(); }
  DatagramTransport& endpoint(Dgram& d, DatagramOptions o) {
    return create_datagram_endpoint(loop, std::make_unique<DgramRecorder>(d), std::move(o));
  }
  std::deque<Dgram> ds;
  EventLoop loop;
};

void ping_pong(DatagramTest& self, const char* ip, Dgram& server, Dgram& client) {
  EventLoop& loop = self.loop;
  server.echo = true;
  DatagramTransport& st = self.endpoint(server, {.local_addr = SocketAddress::parse(ip, 0)});
  SocketAddress at = st.sockname();
  DatagramTransport& ct = self.endpoint(client, {.remote_addr = at});
  EXPECT_EQ(ct.peername(), at);
  ct.sendto("one");
  ct.sendto(std::string_view(""));  // an empty datagram is a datagram too
  ct.sendto("three", at);           // the connected address, given explicitly
  ASSERT_TRUE(run_until(loop, [&] { return client.got.size() == 3; }));
  EXPECT_EQ(client.got[0].first, "one");
  EXPECT_EQ(client.got[1].first, "");
  EXPECT_EQ(client.got[2].first, "three");
  EXPECT_EQ(client.got[0].second, at);
  EXPECT_EQ(server.got[0].second, ct.sockname());
  EXPECT_THROW(ct.sendto("x", SocketAddress::parse(ip, 9)), std::invalid_argument);
  EXPECT_THROW(st.sendto("x"), std::logic_error);
  ct.close();
  st.close();
  ASSERT_TRUE(run_until(loop, [&] { return client.lost == 1 && server.lost == 1; }));
}

TEST_F(DatagramTest, UdpPingPongIpv4) { ping_pong(*this, "127.0.0.1", make(), make()); }

TEST_F(DatagramTest, UdpPingPongIpv6) {
  int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
  SocketAddress a = SocketAddress::parse("::1", 0);
  bool ok = fd >= 0 && ::bind(fd, static_cast<const sockaddr*>(a.data()), a.size()) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) GTEST_SKIP() << "no IPv6 loopback";
  ping_pong(*this, "::1", make(), make());
}

// A connected UDP socket whose peer port is closed: the ICMP port-unreachable comes back as error_received
// (ECONNREFUSED), and the endpoint stays usable.
TEST_F(DatagramTest, RefusedPortReportsErrorReceived) {
  Dgram& gone = make();
  DatagramTransport& g = endpoint(gone, {.local_addr = SocketAddress::parse("127.0.0.1", 0)});
  SocketAddress dead = g.sockname();
  g.close();
  ASSERT_TRUE(run_until(loop, [&] { return gone.lost == 1; }));
  Dgram& c = make();
  DatagramTransport& ct = endpoint(c, {.remote_addr = dead});
  ct.sendto("anyone?");
  ASSERT_TRUE(run_until(loop, [&] { return !c.errors.empty(); }));
  EXPECT_EQ(c.errors[0].value(), ECONNREFUSED);
  EXPECT_FALSE(ct.is_closing());
  ct.close();
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1; }));
}

TEST_F(DatagramTest, UnixDatagrams) {
  std::string dir = ::testing::TempDir();
  std::string spath = dir + "tulipa_dgram_s_" + std::to_string(::getpid());
  std::string cpath = dir + "tulipa_dgram_c_" + std::to_string(::getpid());
  ::unlink(spath.c_str());
  ::unlink(cpath.c_str());
  Dgram& s = make();
  s.echo = true;
  Dgram& c = make();
  endpoint(s, {.local_addr = SocketAddress::unix_path(spath)});
  DatagramTransport& ct =
      endpoint(c, {.local_addr = SocketAddress::unix_path(cpath), .remote_addr = SocketAddress::unix_path(spath)});
  ct.sendto("over a unix socket");
  ASSERT_TRUE(run_until(loop, [&] { return c.got.size() == 1; }));
  EXPECT_EQ(c.got[0].first, "over a unix socket");
  EXPECT_EQ(s.got[0].second.host(), cpath);
  ::unlink(spath.c_str());
  ::unlink(cpath.c_str());
}

std::string temp_path(const char* name) {
  std::string path = ::testing::TempDir() + "tulipa_dgram_" + name + "_" + std::to_string(::getpid());
  ::unlink(path.c_str());
  return path;
}

// More datagrams than the receiver's queue holds (a Unix datagram socket holds 10: the sender waits instead of
// dropping), sent in one go, then one of 60 KiB: all arrive whole and in order. On io_uring they leave as one
// sendmsg in flight at a time and arrive through a recvmsg into the endpoint's own 64 KiB buffer: no poll is
// registered for the endpoints.
TEST_F(DatagramTest, ManyDatagramsThenALargeOneArriveWholeAndInOrder) {
  std::string spath = temp_path("many_s");
  Dgram& s = make();
  Dgram& c = make();
  DatagramTransport& st = endpoint(s, {.local_addr = SocketAddress::unix_path(spath)});
  DatagramTransport& ct = endpoint(c, {.remote_addr = SocketAddress::unix_path(spath)});
  constexpr int kCount = 300;
  for (int i = 0; i < kCount; ++i) ct.sendto(std::to_string(i) + std::string(1000, char('a' + i % 26)));
  const std::string large(60 * 1024, 'L');
  ct.sendto(large);
  EXPECT_GT(ct.get_write_buffer_size(), 0u);
  ASSERT_TRUE(run_until(loop, [&] { return s.got.size() == kCount + 1; }));
  for (int i = 0; i < kCount; ++i)
    ASSERT_EQ(s.got[std::size_t(i)].first, std::to_string(i) + std::string(1000, char('a' + i % 26)));
  EXPECT_TRUE(s.got.back().first == large);
  EXPECT_EQ(ct.get_write_buffer_size(), 0u);
  if (loop.selector().name() == "uring") {
    EXPECT_FALSE(loop.selector().is_registered(st.fd()));
    EXPECT_FALSE(loop.selector().is_registered(ct.fd()));
  }
  ct.close();
  st.close();
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1 && s.lost == 1; }));
  ::unlink(spath.c_str());
}

// A peer that never reads: the endpoint's sends wait (on io_uring, one of them inside the kernel, its packet in
// use); abort() drops them and ends the endpoint, which on io_uring lives until the cancelled send's completion
// (ASan sees a use after free otherwise). Then a loop closed with an endpoint's receive in flight ends it too.
TEST_F(DatagramTest, AbortWithSendsWaitingAndALoopClosedWhileReceiving) {
  std::string path = temp_path("deaf");
  int deaf = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(deaf, 0);
  SocketAddress at = SocketAddress::unix_path(path);
  ASSERT_EQ(::bind(deaf, static_cast<const sockaddr*>(at.data()), at.size()), 0);
  Dgram& c = make();
  DatagramTransport& ct = endpoint(c, {.remote_addr = at});
  for (int i = 0; i < 64; ++i) ct.sendto(std::string(1000, 'x'));
  loop.call_soon([] {});
  loop.run_once();
  EXPECT_GT(ct.get_write_buffer_size(), 0u);
  ct.abort();
  EXPECT_EQ(ct.get_write_buffer_size(), 0u);
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1; }));
  ::close(deaf);
  ::unlink(path.c_str());

  Dgram other;
  {
    EventLoop second;
    create_datagram_endpoint(second, std::make_unique<DgramRecorder>(other),
                             {.local_addr = SocketAddress::parse("127.0.0.1", 0)});
    second.call_soon([] {});
    second.run_once();
    second.close();
    EXPECT_EQ(other.lost, 1);
  }
}

TEST_F(DatagramTest, BadArguments) {
  EXPECT_THROW(endpoint(make(), {}), std::invalid_argument);
  EXPECT_THROW(create_datagram_endpoint(loop, nullptr, {.local_addr = SocketAddress::parse("127.0.0.1", 0)}),
               std::invalid_argument);
  EXPECT_THROW(endpoint(make(), {.local_addr = SocketAddress::parse("127.0.0.1", 0),
                                 .remote_addr = SocketAddress::unix_path("/tmp/x")}),
               std::invalid_argument);
}

}  // namespace
