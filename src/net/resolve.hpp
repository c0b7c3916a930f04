// Host names to socket addresses for create_server / create_connection (src/net only).
//
// Numeric hosts ("127.0.0.1", "::1", "[::1]", "fe80::1%eth0") and the server's "" (every interface) are answered
// here, at once, on the loop thread: no lookup and no thread hop. Every other name goes to getaddrinfo on the DNS
// pool (tulipa/dns.hpp), as asyncio's loop.getaddrinfo does, so a slow name server never blocks the loop.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "tulipa/dns.hpp"
#include "tulipa/future.hpp"
#include "tulipa/socket_address.hpp"

namespace tulipa::detail {

// The addresses for a host that needs no lookup: a numeric address, or "" when `passive` (0.0.0.0 and ::).
// Empty optional: a name, for the resolver. Throws std::invalid_argument for "" when not passive.
std::optional<std::vector<SocketAddress>> numeric_addresses(std::string_view host, std::uint16_t port, bool passive);

// getaddrinfo(host, port) for TCP on the DNS pool (AI_PASSIVE for servers). The Future fails with GaiError.
Future<std::vector<AddrInfo>> lookup_stream_addresses(EventLoop& loop, std::string_view host, std::uint16_t port,
                                                      bool passive);

// The answer's addresses in getaddrinfo's order, each once (a name listed twice in the hosts file, or an answer
// per socket type, gives duplicates). Throws GaiError(EAI_NONAME) naming `host` when nothing is left.
std::vector<SocketAddress> unique_addresses(const std::vector<AddrInfo>& infos, std::string_view host);

}  // namespace tulipa::detail
