// Creating connections, servers and datagram endpoints (asyncio's loop.create_server & co, as free functions
// that take the loop).
//
// Host names: numeric addresses ("127.0.0.1", "::1") are used as given; "localhost" is looked up in the hosts
// file (getaddrinfo, which does not touch the network for it); "" in create_server means every interface, IPv4
// and IPv6. Any other name throws std::invalid_argument for now: resolving arbitrary names would block the loop,
// and the executor-based resolver is a separate piece (it will slot in under these same functions).
//
// Completion callbacks (ConnectCallback) always run as loop callbacks, never inside the call that started them.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "tulipa/future.hpp"
#include "tulipa/protocol.hpp"
#include "tulipa/server.hpp"
#include "tulipa/socket_address.hpp"
#include "tulipa/transport.hpp"

namespace tulipa {

class EventLoop;

// --- servers
// Listens on every address `host` resolves to (so "localhost" and "" give an IPv4 and an IPv6 socket). Binding
// is immediate: errors (EADDRINUSE, ...) throw std::system_error from here. Port 0 picks a free port per socket
// (read it back with Server::sockets()).
Server create_server(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                     ServerOptions options = {});
// A Unix stream socket at `path` (a stale socket file left by a dead server is replaced; any other file there is
// an error). Closing the server unlinks the path.
Server create_unix_server(EventLoop& loop, ProtocolFactory factory, std::string_view path, ServerOptions options = {});

// --- connections
// Called once: with the transport (its protocol's connection_made already ran) or with the error.
using ConnectCallback = std::function<void(Transport* transport, std::exception_ptr error)>;

struct ConnectOptions {
  bool nodelay = true;        // TCP_NODELAY (TCP only)
  SocketAddress local_addr;   // bind before connecting, when not empty
};

// Connects to each address `host` resolves to in turn until one accepts. The protocol comes from `factory`, called
// once the connection is up. Bad host names throw std::invalid_argument at once; connection errors go to `done`.
void create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                       ConnectCallback done, ConnectOptions options = {});
void create_unix_connection(EventLoop& loop, ProtocolFactory factory, std::string_view path, ConnectCallback done);

// The same, awaitable: `Transport* t = co_await create_connection(loop, factory, "127.0.0.1", port);` (asyncio's
// `transport, protocol = await loop.create_connection(...)`; the protocol is t->get_protocol()). Connection errors
// come out of the co_await. If the future is cancelled before the connection is up, the connection is aborted
// when it arrives (its protocol then sees connection_made and connection_lost).
Future<Transport*> create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host,
                                     std::uint16_t port, ConnectOptions options = {});
Future<Transport*> create_unix_connection(EventLoop& loop, ProtocolFactory factory, std::string_view path);

// Wraps a connected stream socket the caller accepted or connected itself; the transport takes ownership of `fd`
// (it is made non-blocking). connection_made runs before this returns.
Transport& connect_accepted_socket(EventLoop& loop, std::unique_ptr<StreamProtocol> protocol, int fd);

// --- datagrams
struct DatagramOptions {
  SocketAddress local_addr;    // bind here when not empty
  SocketAddress remote_addr;   // connect here when not empty (then sendto() may omit the address)
  bool reuse_port = false;
  bool allow_broadcast = false;
};
// A UDP endpoint (or a Unix datagram one when the addresses are Unix paths). At least one address must be given
// (std::invalid_argument otherwise). Immediate: errors throw std::system_error. connection_made runs before this
// returns.
DatagramTransport& create_datagram_endpoint(EventLoop& loop, std::unique_ptr<DatagramProtocol> protocol,
                                            DatagramOptions options);

// --- name resolution, as described at the top (numeric, "localhost", and "" with passive=true).
std::vector<SocketAddress> resolve_address(std::string_view host, std::uint16_t port, bool passive);

}  // namespace tulipa
