// Small socket helpers shared by the servers, connections and datagram endpoints (src/net only).
#pragma once

#include <cstdint>
#include <string>

#include "tulipa/socket_address.hpp"

namespace tulipa::detail {

// socket(2) for the address's family, non-blocking and close-on-exec; throws std::system_error.
int open_socket(const SocketAddress& address, int type);
// Throws std::system_error(errno, "<what> <address>").
[[noreturn]] void throw_socket_error(int err, const char* what, const SocketAddress& address);
void set_nodelay(int fd) noexcept;
void set_option(int fd, int level, int name, int value, const char* what, const SocketAddress& address);
SocketAddress local_address(int fd);
SocketAddress peer_address(int fd);  // empty when not connected
// `address` (IPv4 or IPv6) with another port; the rest (an IPv6 scope id too) unchanged.
SocketAddress with_port(SocketAddress address, std::uint16_t port) noexcept;

}  // namespace tulipa::detail
