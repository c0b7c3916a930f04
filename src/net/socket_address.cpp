// SocketAddress: parsing and printing of the kernel's socket addresses.
#include "tulipa/socket_address.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace tulipa {

static_assert(sizeof(sockaddr_storage) <= SocketAddress::capacity);

SocketAddress SocketAddress::parse(std::string_view ip, std::uint16_t port) {
  SocketAddress a;
  std::string text(ip);
  // inet_pton and if_nametoindex stop at a NUL: "127.0.0.1\0junk" must not pass for "127.0.0.1".
  if (text.find('\0') != std::string::npos) throw std::invalid_argument("not a numeric IP address (NUL inside)");
  if (text.find(':') == std::string::npos) {
    auto* sin = static_cast<sockaddr_in*>(a.data());
    if (inet_pton(AF_INET, text.c_str(), &sin->sin_addr) != 1) {
      throw std::invalid_argument("not a numeric IP address: '" + text + "'");
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    a.size_ = sizeof(sockaddr_in);
    return a;
  }
  auto* sin6 = static_cast<sockaddr_in6*>(a.data());
  std::string addr = text;
  std::string zone;
  if (auto pct = text.find('%'); pct != std::string::npos) {
    addr = text.substr(0, pct);
    zone = text.substr(pct + 1);
  }
  if (inet_pton(AF_INET6, addr.c_str(), &sin6->sin6_addr) != 1) {
    throw std::invalid_argument("not a numeric IP address: '" + text + "'");
  }
  if (!zone.empty()) {
    unsigned index = if_nametoindex(zone.c_str());
    if (index == 0) throw std::invalid_argument("unknown network interface in '" + text + "'");
    sin6->sin6_scope_id = index;
  }
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  a.size_ = sizeof(sockaddr_in6);
  return a;
}

SocketAddress SocketAddress::unix_path(std::string_view path) {
  SocketAddress a;
  auto* sun = static_cast<sockaddr_un*>(a.data());
  if (path.empty()) throw std::invalid_argument("empty Unix socket path");
  // The kernel ends a file system path at its first NUL: a NUL inside would name another file.
  if (path[0] != '\0' && path.find('\0') != std::string_view::npos) {
    throw std::invalid_argument("Unix socket path with a NUL inside");
  }
  if (path.size() >= sizeof(sun->sun_path)) {
    throw std::invalid_argument("Unix socket path too long (" + std::to_string(path.size()) + " bytes, at most " +
                                std::to_string(sizeof(sun->sun_path) - 1) + ")");
  }
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, path.data(), path.size());
  // An abstract name (leading NUL) is exactly as long as given; a path carries its terminating NUL.
  a.size_ = static_cast<std::uint32_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '\0' ? 0 : 1));
  return a;
}

SocketAddress SocketAddress::from_raw(const void* sockaddr, std::size_t size) {
  if (size > capacity) throw std::invalid_argument("socket address too large");
  SocketAddress a;
  std::memcpy(a.storage_, sockaddr, size);
  a.size_ = static_cast<std::uint32_t>(size);
  return a;
}

SocketAddress::Family SocketAddress::family() const noexcept {
  if (size_ < sizeof(sa_family_t)) return Family::none;
  switch (static_cast<const sockaddr*>(data())->sa_family) {
    case AF_INET:
      return Family::ipv4;
    case AF_INET6:
      return Family::ipv6;
    case AF_UNIX:
      return Family::unix_path;
    default:
      return Family::none;
  }
}

std::uint16_t SocketAddress::port() const noexcept {
  switch (family()) {
    case Family::ipv4:
      return ntohs(static_cast<const sockaddr_in*>(data())->sin_port);
    case Family::ipv6:
      return ntohs(static_cast<const sockaddr_in6*>(data())->sin6_port);
    default:
      return 0;
  }
}

std::string SocketAddress::host() const {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
  switch (family()) {
    case Family::ipv4:
      inet_ntop(AF_INET, &static_cast<const sockaddr_in*>(data())->sin_addr, buf, sizeof buf);
      return buf;
    case Family::ipv6: {
      const auto* sin6 = static_cast<const sockaddr_in6*>(data());
      inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
      std::string s = buf;
      char name[IF_NAMESIZE] = {};
      if (sin6->sin6_scope_id != 0 && if_indextoname(sin6->sin6_scope_id, name)) s += std::string("%") + name;
      return s;
    }
    case Family::unix_path: {
      const auto* sun = static_cast<const sockaddr_un*>(data());
      std::size_t n = size_ - offsetof(sockaddr_un, sun_path);
      if (n == 0) return "";  // an unnamed socket (the client end of a connection)
      if (sun->sun_path[0] == '\0') return "@" + std::string(sun->sun_path + 1, n - 1);
      return std::string(sun->sun_path, strnlen(sun->sun_path, n));
    }
    default:
      return "";
  }
}

std::string SocketAddress::to_string() const {
  switch (family()) {
    case Family::ipv4:
      return host() + ":" + std::to_string(port());
    case Family::ipv6:
      return "[" + host() + "]:" + std::to_string(port());
    default:
      return host();
  }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.size_ == b.size_ && std::memcmp(a.storage_, b.storage_, a.size_) == 0;
}

}  // namespace tulipa
