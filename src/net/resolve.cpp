// resolve_address: numeric hosts, "localhost" and "" (every interface), without blocking the loop on DNS.
// "localhost" goes through getaddrinfo, which answers it from the hosts file (nss "files") without the network;
// any other name is refused with a clear error until the executor-based resolver exists.
#include <netdb.h>
#include <sys/socket.h>

#include <stdexcept>
#include <string>

#include "tulipa/net.hpp"

namespace tulipa {

std::vector<SocketAddress> resolve_address(std::string_view host, std::uint16_t port, bool passive) {
  std::vector<SocketAddress> out;
  if (host.empty()) {
    if (!passive) throw std::invalid_argument("an empty host is only valid for a server (every interface)");
    out.push_back(SocketAddress::parse("0.0.0.0", port));
    out.push_back(SocketAddress::parse("::", port));
    return out;
  }
  std::string_view bare = host;
  if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
  try {
    out.push_back(SocketAddress::parse(bare, port));
    return out;
  } catch (const std::invalid_argument&) {
  }
  if (host != "localhost") {
    throw std::invalid_argument("cannot resolve host name '" + std::string(host) +
                                "': only numeric addresses and \"localhost\" are supported without a resolver");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo("localhost", service.c_str(), &hints, &res); rc != 0) {
    throw std::invalid_argument(std::string("cannot resolve \"localhost\": ") + gai_strerror(rc));
  }
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    SocketAddress a = SocketAddress::from_raw(ai->ai_addr, ai->ai_addrlen);
    bool seen = false;
    for (const auto& b : out) seen = seen || b == a;
    if (!seen) out.push_back(a);
  }
  freeaddrinfo(res);
  if (out.empty()) throw std::invalid_argument("\"localhost\" resolved to no address");
  return out;
}

}  // namespace tulipa
