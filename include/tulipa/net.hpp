// Creating connections, servers and datagram endpoints (asyncio's loop.create_server & co, as free functions
// that take the loop).
//
// Host names, as asyncio: numeric addresses ("127.0.0.1", "::1", "[::1]") are used as given, at once, with no lookup
// and no thread hop; "" in a server means every interface (0.0.0.0 and ::). Any other name is looked up with
// getaddrinfo on the DNS pool (dns.hpp), never on the loop thread: create_connection tries each address the name
// resolves to in turn; create_server_async listens on each. A failed lookup is reported as a GaiError (dns.hpp,
// Python's socket.gaierror: a std::runtime_error whose code() is the EAI_* value and whose message names the host).
// The synchronous create_server cannot wait for a lookup: besides numeric hosts and "" it answers only "localhost"
// (from the hosts file, which needs no network) and refuses other names with std::invalid_argument.
//
// Completion callbacks (ConnectCallback) always run as loop callbacks, never inside the call that started them.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "tulipa/dns.hpp"
#include "tulipa/future.hpp"
#include "tulipa/protocol.hpp"
#include "tulipa/server.hpp"
#include "tulipa/socket_address.hpp"
#include "tulipa/transport.hpp"

namespace tulipa {

class EventLoop;

// --- servers
// Listens on every address `host` resolves to, each once (so "" gives an IPv4 and an IPv6 socket, and "localhost"
// one per address the hosts file lists for it). Binding is immediate: errors (EADDRINUSE, ...) throw
// std::system_error from here, after closing the sockets already bound. Port 0 with several addresses: the first
// socket picks a free port and the others take the same one (read it back with Server::sockets()).
// Host names other than "localhost" throw std::invalid_argument (see the top): use create_server_async.
Server create_server(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                     ServerOptions options = {});
// asyncio's `await loop.create_server(...)`: the same for any host name, awaitable:
//   `Server server = co_await create_server_async(loop, factory, "my-host", 0);`
// A name is resolved on the DNS pool (AI_PASSIVE), then every address it gives is bound as above. The Future fails
// with GaiError when the lookup fails, std::system_error when binding fails; a numeric host or "" is bound before
// this returns (no thread hop) and the Future is already done. Cancelling the Future while the name is looked up
// drops the answer and binds nothing. A null factory throws std::invalid_argument at once.
Future<Server> create_server_async(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                   ServerOptions options = {});
// A Unix stream socket at `path` (a stale socket file left by a dead server is replaced; any other file there is
// an error). Closing the server unlinks the path.
Server create_unix_server(EventLoop& loop, ProtocolFactory factory, std::string_view path, ServerOptions options = {});

// --- connections
// Called once: with the transport (its protocol's connection_made already ran) or with the error.
using ConnectCallback = std::function<void(Transport* transport, std::exception_ptr error)>;

struct ConnectOptions {
  bool nodelay = true;         // TCP_NODELAY (TCP only)
  SocketAddress local_addr{};  // bind before connecting, when not empty
};

namespace detail {
// What a ConnectHandle observes: the TCP connector (connect.cpp), or a stage built over it (the TLS
// create_connection's connect-then-handshake, src/tls/), so that one handle cancels every stage of an attempt.
class ConnectAttempt {
 public:
  virtual bool cancel() noexcept = 0;
  virtual bool pending() const noexcept = 0;

 protected:
  ~ConnectAttempt() = default;  // owned by shared pointers to the concrete type
};
}  // namespace detail

// A create_connection in progress (callback form). A cheap copyable handle that keeps nothing alive: once the
// attempt is over (`done` ran or cancel() stopped it), the handle is inert. Loop thread only.
class ConnectHandle {
 public:
  ConnectHandle() noexcept = default;
  explicit ConnectHandle(std::weak_ptr<detail::ConnectAttempt> c) noexcept : c_(std::move(c)) {}
  // Stops the attempt if it is still pending: a host name lookup in flight is abandoned (its answer is dropped
  // when it arrives), the socket being connected is closed, and neither the protocol factory nor `done` is ever
  // called (they are destroyed here). Returns false, doing nothing, when the attempt is already over: `done` ran
  // (or is running), or cancel() was called before. Safe to call from anywhere on the loop thread, `done` included.
  bool cancel() noexcept;
  // Neither finished nor cancelled yet.
  bool pending() const noexcept;

 private:
  std::weak_ptr<detail::ConnectAttempt> c_;
};

// Connects to each address `host` resolves to in turn until one accepts (asyncio's default: no happy eyeballs; when
// all fail, `done` gets the last address's error). The protocol comes from `factory`, called once the connection is
// up. Errors go to `done`: GaiError when the name does not resolve, std::system_error (naming the address) when
// connecting fails. An empty host or a missing factory / callback throw std::invalid_argument at once.
ConnectHandle create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                ConnectCallback done, ConnectOptions options = {});
ConnectHandle create_unix_connection(EventLoop& loop, ProtocolFactory factory, std::string_view path,
                                     ConnectCallback done);

// The same, awaitable: `Transport* t = co_await create_connection(loop, factory, "127.0.0.1", port);` (asyncio's
// `transport, protocol = await loop.create_connection(...)`; the protocol is t->get_protocol()). Connection errors
// come out of the co_await. Cancelling the future (or the task awaiting it) cancels the attempt as
// ConnectHandle::cancel() does: the lookup is abandoned or the socket closed (on the next loop pass), and the
// factory is not called after the cancellation.
Future<Transport*> create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host,
                                     std::uint16_t port, ConnectOptions options = {});
Future<Transport*> create_unix_connection(EventLoop& loop, ProtocolFactory factory, std::string_view path);

// Wraps a connected stream socket the caller accepted or connected itself; the transport takes ownership of `fd`
// (it is made non-blocking). connection_made runs before this returns.
Transport& connect_accepted_socket(EventLoop& loop, std::unique_ptr<StreamProtocol> protocol, int fd);

// --- the same on the running loop (std::runtime_error when none runs on this thread): what coroutine code calls.
inline Server create_server(ProtocolFactory factory, std::string_view host, std::uint16_t port,
                            ServerOptions options = {}) {
  return create_server(get_running_loop(), std::move(factory), host, port, std::move(options));
}
inline Future<Server> create_server_async(ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                          ServerOptions options = {}) {
  return create_server_async(get_running_loop(), std::move(factory), host, port, std::move(options));
}
inline Server create_unix_server(ProtocolFactory factory, std::string_view path, ServerOptions options = {}) {
  return create_unix_server(get_running_loop(), std::move(factory), path, std::move(options));
}
inline Future<Transport*> create_connection(ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                            ConnectOptions options = {}) {
  return create_connection(get_running_loop(), std::move(factory), host, port, std::move(options));
}
inline Future<Transport*> create_unix_connection(ProtocolFactory factory, std::string_view path) {
  return create_unix_connection(get_running_loop(), std::move(factory), path);
}

// --- datagrams
struct DatagramOptions {
  SocketAddress local_addr{};   // bind here when not empty
  SocketAddress remote_addr{};  // connect here when not empty (then sendto() may omit the address)
  bool reuse_port = false;
  bool allow_broadcast = false;
};
// A UDP endpoint (or a Unix datagram one when the addresses are Unix paths). At least one address must be given
// (std::invalid_argument otherwise). Immediate: errors throw std::system_error. connection_made runs before this
// returns.
DatagramTransport& create_datagram_endpoint(EventLoop& loop, std::unique_ptr<DatagramProtocol> protocol,
                                            DatagramOptions options);

// --- name resolution without the DNS pool, as the synchronous create_server does it: numeric hosts, "" with
// passive=true, and "localhost" (from the hosts file, on the calling thread). Other names throw
// std::invalid_argument; a failed "localhost" lookup throws GaiError.
std::vector<SocketAddress> resolve_address(std::string_view host, std::uint16_t port, bool passive);

}  // namespace tulipa
