// The awaitable forms of the net calls: co_await create_connection(...) and co_await server.wait_closed().
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <system_error>

#include <gtest/gtest.h>

#include "support/coro_loop.hpp"
#include "support/net_util.hpp"
#include "tulipa/net.hpp"

using namespace tulipa;
using namespace tulipa::test;

namespace {

TEST(NetAsyncTest, AwaitConnectionThenWaitClosed) {
  CoroLoop cl;
  EventLoop& loop = cl.loop();
  Log s, c;
  Server server = create_server(loop, recorder_factory(s), "127.0.0.1", 0);
  const std::uint16_t port = port_of(server);
  bool closed = false;
  cl.run([&]() -> Coro<void> {
    Transport* t = co_await create_connection(loop, recorder_factory(c), "127.0.0.1", port);
    EXPECT_EQ(c.made, 1);
    EXPECT_EQ(&static_cast<Recorder&>(t->get_protocol()).log, &c);
    t->write("async");
    server.close();  // stop listening; wait_closed still waits for the connection
    t->close();
    co_await server.wait_closed();
    closed = true;
  }());
  EXPECT_TRUE(closed);
  EXPECT_EQ(s.received, "async");
  EXPECT_EQ(s.lost, 1);
  EXPECT_EQ(c.lost, 1);
}

// serve_forever starts a server made with start_serving = false and returns once it is closed.
TEST(NetAsyncTest, ServeForeverUntilClosed) {
  CoroLoop cl;
  EventLoop& loop = cl.loop();
  Log s, c;
  s.on_data = [](Log& l, std::span<const std::byte>) { l.transport->close(); };
  ServerOptions o;
  o.start_serving = false;
  Server server = create_server(loop, recorder_factory(s), "127.0.0.1", 0, o);
  const std::uint16_t port = port_of(server);
  bool served = false;
  cl.run([&]() -> Coro<void> {
    Future<void> forever = server.serve_forever();
    EXPECT_TRUE(server.is_serving());
    Transport* t = co_await create_connection(loop, recorder_factory(c), "127.0.0.1", port);
    t->write("stop");
    s.on_lost = [&](Log&) { server.close(); };  // as a shutdown handler would, from a callback
    co_await forever;
    served = true;
  }());
  EXPECT_TRUE(served);
  EXPECT_EQ(s.received, "stop");
  EXPECT_FALSE(server.is_serving());
}

TEST(NetAsyncTest, ConnectionErrorsComeOutOfTheAwait) {
  CoroLoop cl;
  EventLoop& loop = cl.loop();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  SocketAddress a = SocketAddress::parse("127.0.0.1", 0);
  ASSERT_EQ(::bind(fd, static_cast<const sockaddr*>(a.data()), a.size()), 0);
  socklen_t len = SocketAddress::capacity;
  ::getsockname(fd, static_cast<sockaddr*>(a.data()), &len);
  a.set_size(len);
  ::close(fd);
  Log c;
  int code = 0;
  cl.run([&]() -> Coro<void> {
    try {
      co_await create_connection(loop, recorder_factory(c), "127.0.0.1", a.port());
    } catch (const std::system_error& e) {
      code = e.code().value();
    }
  }());
  EXPECT_EQ(code, ECONNREFUSED);
  EXPECT_EQ(c.made, 0);
}

}  // namespace
