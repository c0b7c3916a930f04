#include "net/sockets.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <system_error>

namespace tulipa::detail {

int open_socket(const SocketAddress& address, int type) {
  int domain = static_cast<const sockaddr*>(address.data())->sa_family;
  int fd = ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_socket_error(errno, "socket() for", address);
  return fd;
}

void throw_socket_error(int err, const char* what, const SocketAddress& address) {
  throw std::system_error(err, std::generic_category(), std::string(what) + " " + address.to_string());
}

void set_nodelay(int fd) noexcept {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void set_option(int fd, int level, int name, int value, const char* what, const SocketAddress& address) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) throw_socket_error(errno, what, address);
}

SocketAddress local_address(int fd) {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity;
  if (::getsockname(fd, static_cast<sockaddr*>(a.data()), &len) == 0) a.set_size(len);
  return a;
}

SocketAddress peer_address(int fd) {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity;
  if (::getpeername(fd, static_cast<sockaddr*>(a.data()), &len) == 0) a.set_size(len);
  return a;
}

SocketAddress with_port(SocketAddress address, std::uint16_t port) noexcept {
  if (address.family() == SocketAddress::Family::ipv4) {
    static_cast<sockaddr_in*>(address.data())->sin_port = htons(port);
  } else if (address.family() == SocketAddress::Family::ipv6) {
    static_cast<sockaddr_in6*>(address.data())->sin6_port = htons(port);
  }
  return address;
}

}  // namespace tulipa::detail
