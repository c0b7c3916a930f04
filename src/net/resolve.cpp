// Host names to addresses (see resolve.hpp): numeric hosts at once, names through getaddrinfo on the DNS pool, and
// resolve_address (net.hpp), the synchronous form the blocking create_server uses.
#include "net/resolve.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <stdexcept>
#include <string>

#include "tulipa/net.hpp"

namespace tulipa {
namespace detail {

std::optional<std::vector<SocketAddress>> numeric_addresses(std::string_view host, std::uint16_t port, bool passive) {
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
    return std::nullopt;  // a name
  }
}

Future<std::vector<AddrInfo>> lookup_stream_addresses(EventLoop& loop, std::string_view host, std::uint16_t port,
                                                      bool passive) {
  AddrInfoHints hints;
  hints.family = AF_UNSPEC;  // IPv4 and IPv6, in the order the C library prefers (RFC 6724)
  hints.type = SOCK_STREAM;
  hints.flags = passive ? AI_PASSIVE : 0;
  return getaddrinfo(loop, std::string(host), port, hints);
}

std::vector<SocketAddress> unique_addresses(const std::vector<AddrInfo>& infos, std::string_view host) {
  std::vector<SocketAddress> out;
  for (const AddrInfo& ai : infos) {
    if (ai.address.empty()) continue;
    bool seen = false;
    for (const auto& b : out) seen = seen || b == ai.address;
    if (!seen) out.push_back(ai.address);
  }
  if (out.empty()) {
    throw GaiError(EAI_NONAME, "getaddrinfo(\"" + std::string(host) + "\"): no stream socket address");
  }
  return out;
}

}  // namespace detail

std::vector<SocketAddress> resolve_address(std::string_view host, std::uint16_t port, bool passive) {
  if (auto numeric = detail::numeric_addresses(host, port, passive)) return std::move(*numeric);
  if (host != "localhost") {
    throw std::invalid_argument("cannot resolve host name '" + std::string(host) +
                                "' without blocking the loop: use create_server_async (or create_connection, "
                                "which resolves on the DNS pool)");
  }
  // The one name answered on the loop thread: nss "files" has it, so getaddrinfo reads the hosts file and does not
  // touch the network.
  AddrInfoHints hints;
  hints.type = SOCK_STREAM;
  hints.flags = passive ? AI_PASSIVE : 0;
  return detail::unique_addresses(getaddrinfo_blocking("localhost", std::to_string(port), hints), host);
}

}  // namespace tulipa
