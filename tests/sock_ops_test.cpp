// sock_recv, sock_recv_into, sock_sendall, sock_accept, sock_connect: results, EOF, errors, large transfers that
// must wait for readiness, and cancellation of each while it waits.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sock.hpp"
#include "tulipa/task.hpp"

using namespace tulipa;

namespace {

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  operator int() const { return fd; }  // NOLINT
};

std::pair<Fd, Fd> socket_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::system_error(errno, std::generic_category(), "socketpair");
  return {Fd(sv[0]), Fd(sv[1])};
}

Fd tcp_socket(int family = AF_INET) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  return Fd(fd);
}

// A listening socket on 127.0.0.1, port 0; returns it and its address.
std::pair<Fd, SocketAddress> listener() {
  Fd fd = tcp_socket();
  SocketAddress a = SocketAddress::parse("127.0.0.1", 0);
  if (::bind(fd, static_cast<const sockaddr*>(a.data()), a.size()) != 0 || ::listen(fd, 16) != 0)
    throw std::system_error(errno, std::generic_category(), "bind/listen");
  SocketAddress bound;
  socklen_t len = SocketAddress::capacity;
  ::getsockname(fd, static_cast<sockaddr*>(bound.data()), &len);
  bound.set_size(len);
  return {std::move(fd), bound};
}

template <class T>
bool cancelled_while_waiting(EventLoop& loop, Task<T> task) {
  loop.run_once();  // the task's first step: it tries, gets EAGAIN/EINPROGRESS, and waits
  EXPECT_FALSE(task.done()) << "the operation did not wait";
  task.cancel("stop");
  try {
    run_until_complete(loop, Future<T>(task));
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "stop");
    return true;
  }
  return false;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4099) % 26);
  return s;
}

}  // namespace

TEST(SockOps, RecvWaitsForData) {
  EventLoop loop;
  auto [a, b] = socket_pair();
  auto reader = create_task(loop, [](EventLoop& loop, int fd) -> Coro<std::string> {
    Bytes got = co_await sock_recv(loop, fd, 100);
    co_return got.str();
  }(loop, a));
  loop.run_once();
  EXPECT_FALSE(reader.done());
  run_until_complete(loop,
                     [](EventLoop& loop, int fd) -> Coro<void> { co_await sock_sendall(loop, fd, "hello"); }(loop, b));
  EXPECT_EQ(run_until_complete(loop, Future<std::string>(reader)), "hello");
  EXPECT_FALSE(loop.remove_reader(a)) << "the reader callback was left behind";
}

TEST(SockOps, RecvIntoAndEof) {
  EventLoop loop;
  auto [a, b] = socket_pair();
  ASSERT_EQ(::write(b, "abc", 3), 3);
  ::shutdown(b, SHUT_WR);
  run_until_complete(loop, [](EventLoop& loop, int fd) -> Coro<void> {
    std::byte buf[2];
    EXPECT_EQ(co_await sock_recv_into(loop, fd, buf), 2u);
    EXPECT_EQ(static_cast<char>(buf[0]), 'a');
    EXPECT_EQ(co_await sock_recv_into(loop, fd, buf), 1u);
    EXPECT_EQ(co_await sock_recv_into(loop, fd, buf), 0u);  // EOF
    EXPECT_TRUE((co_await sock_recv(loop, fd, 10)).empty());
  }(loop, a));
}

TEST(SockOps, LargeRecvGoesStraightIntoItsChunk) {
  EventLoop loop;
  auto [a, b] = socket_pair();
  const std::string data = pattern(100000);
  run_until_complete(loop, [](EventLoop& loop, int a, int b, const std::string& data) -> Coro<void> {
    co_await sock_sendall(loop, b, data);
    std::string got;
    while (got.size() < data.size()) got += (co_await sock_recv(loop, a, 1 << 20)).str();
    EXPECT_EQ(got, data);
  }(loop, a, b, data));
}

TEST(SockOps, SendallWaitsForTheReader) {
  EventLoop loop;
  auto [a, b] = socket_pair();
  const std::string data = pattern(8 << 20);  // far more than a socket buffer holds
  auto sender = create_task(loop, [](EventLoop& loop, int fd, const std::string& data) -> Coro<std::size_t> {
    co_await sock_sendall(loop, fd, data);
    co_return data.size();
  }(loop, a, data));
  std::string got = run_until_complete(loop, [](EventLoop& loop, int fd, std::size_t n) -> Coro<std::string> {
    std::string got;
    std::string buf(65536, '\0');
    while (got.size() < n) {
      std::size_t k = co_await sock_recv_into(loop, fd, std::as_writable_bytes(std::span(buf.data(), buf.size())));
      if (k == 0) break;
      got.append(buf.data(), k);
    }
    co_return got;
  }(loop, b, data.size()));
  EXPECT_EQ(run_until_complete(loop, Future<std::size_t>(sender)), data.size());
  EXPECT_TRUE(got == data);
}

TEST(SockOps, AcceptAndConnect) {
  EventLoop loop;
  auto [lfd, addr] = listener();
  auto server = create_task(loop, [](EventLoop& loop, int lfd) -> Coro<std::string> {
    Accepted conn = co_await sock_accept(loop, lfd);
    Fd fd(conn.fd);
    EXPECT_EQ(conn.address.family(), SocketAddress::Family::ipv4);
    EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK);
    Bytes msg = co_await sock_recv(loop, fd, 64);
    co_await sock_sendall(loop, fd, "re: " + msg.str());
    co_return msg.str();
  }(loop, lfd));
  std::string reply = run_until_complete(loop, [](EventLoop& loop, SocketAddress addr) -> Coro<std::string> {
    Fd fd = tcp_socket();
    co_await sock_connect(loop, fd, addr);
    co_await sock_sendall(loop, fd, "ping");
    co_return (co_await sock_recv(loop, fd, 64)).str();
  }(loop, addr));
  EXPECT_EQ(reply, "re: ping");
  EXPECT_EQ(run_until_complete(loop, Future<std::string>(server)), "ping");
}

TEST(SockOps, Errors) {
  EventLoop loop;
  SocketAddress closed_port;
  {
    auto [lfd, addr] = listener();
    closed_port = addr;
  }
  run_until_complete(loop, [](EventLoop& loop, SocketAddress addr) -> Coro<void> {
    Fd fd = tcp_socket();
    try {
      co_await sock_connect(loop, fd, addr);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED);
    }
    try {
      (void)co_await sock_recv(loop, 1000000, 10);  // not an open fd
      ADD_FAILURE() << "recv on a bad fd";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
    }
    auto [a, b] = socket_pair();
    ::close(b.fd);
    b.fd = -1;
    try {
      co_await sock_sendall(loop, a, "to nobody");
      ADD_FAILURE() << "send to a closed peer";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPIPE);
    }
  }(loop, closed_port));
}

TEST(SockOps, CancelEachWhileWaiting) {
  EventLoop loop;
  auto [a, b] = socket_pair();
  EXPECT_TRUE(cancelled_while_waiting(loop, create_task(loop, [](EventLoop& loop, int fd) -> Coro<void> {
                                        (void)co_await sock_recv(loop, fd, 10);
                                      }(loop, a))));
  EXPECT_FALSE(loop.remove_reader(a));
  EXPECT_TRUE(cancelled_while_waiting(loop, create_task(loop, [](EventLoop& loop, int fd) -> Coro<void> {
                                        std::byte buf[10];
                                        (void)co_await sock_recv_into(loop, fd, buf);
                                      }(loop, a))));
  EXPECT_FALSE(loop.remove_reader(a));
  // Nothing was consumed by the cancelled reads: data sent now arrives whole.
  ASSERT_EQ(::write(b, "after", 5), 5);
  EXPECT_EQ(run_until_complete(loop,
                               [](EventLoop& loop, int fd) -> Coro<std::string> {
                                 co_return (co_await sock_recv(loop, fd, 10)).str();
                               }(loop, a)),
            "after");

  const std::string big = pattern(8 << 20);
  EXPECT_TRUE(cancelled_while_waiting(
      loop, create_task(loop, [](EventLoop& loop, int fd, const std::string& big) -> Coro<void> {
        co_await sock_sendall(loop, fd, big);
      }(loop, a, big))));
  EXPECT_FALSE(loop.remove_writer(a));

  auto [lfd, addr] = listener();
  EXPECT_TRUE(cancelled_while_waiting(loop, create_task(loop, [](EventLoop& loop, int fd) -> Coro<void> {
                                        (void)co_await sock_accept(loop, fd);
                                      }(loop, lfd))));
  EXPECT_FALSE(loop.remove_reader(lfd));

  Fd c = tcp_socket();
  EXPECT_TRUE(
      cancelled_while_waiting(loop, create_task(loop, [](EventLoop& loop, int fd, SocketAddress addr) -> Coro<void> {
                                co_await sock_connect(loop, fd, addr);
                              }(loop, c, addr))));
  EXPECT_FALSE(loop.remove_writer(c));
}
