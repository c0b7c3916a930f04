// Server: the listening side of create_server / create_unix_server (asyncio's Server object).
//
// A Server owns its listening sockets. Each accepted connection gets a fresh protocol from the factory and a
// transport (transport.hpp); connections are owned by the library, not by the Server, and outlive close():
// close() only stops listening, as in asyncio. close_clients() / abort_clients() end the connections too.
//
// Accepting: on each wake-up a listening socket accepts up to `max_accepts_per_wakeup` connections (accept4 in a
// loop). When the process runs out of file descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM), the
// server stops polling its listening sockets for `accept_retry_delay`, reports the condition through the loop's
// exception handler (once per shortage: not again until the backlog was drained), and then resumes: the pending
// connections wait in the kernel's backlog meanwhile, instead of the loop spinning on a listening socket it cannot
// drain.
//
// Destroying a Server closes it. It must be destroyed (or closed) before its loop is closed.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "tulipa/callback.hpp"
#include "tulipa/clock.hpp"
#include "tulipa/future.hpp"
#include "tulipa/protocol.hpp"
#include "tulipa/socket_address.hpp"

namespace tulipa {

class EventLoop;

// Makes the protocol for each new connection. Called on the loop's thread; must not return null
// (the connection is then refused and the error reported).
using ProtocolFactory = std::function<std::unique_ptr<StreamProtocol>()>;

struct ServerOptions {
  // listen(2) backlog. 0: the system's limit, /proc/sys/net/core/somaxconn (4096 on current kernels). asyncio's 100
  // is too small for a burst of connects: once the queue is full the kernel answers with SYN cookies and then drops
  // the completed connections, so clients believe they are connected and are never served.
  int backlog = 0;
  bool reuse_address = true;                              // SO_REUSEADDR (TCP only)
  bool reuse_port = false;                                // SO_REUSEPORT: several servers (processes) share the port
  bool start_serving = true;                              // false: listen, but accept only after start_serving()
  bool nodelay = true;                                    // TCP_NODELAY on accepted connections (asyncio sets it too)
  int max_accepts_per_wakeup = 0;                         // 0: 100 (asyncio's batch), or `backlog` if smaller
  Duration accept_retry_delay = std::chrono::seconds(1);  // pause after EMFILE & co (asyncio's ACCEPT_RETRY_DELAY)
};

namespace detail {
struct ServerCore;
}

class Server {
 public:
  Server() noexcept = default;
  explicit Server(detail::ServerCore* core) noexcept : core_(core) {}
  Server(Server&& other) noexcept;
  Server& operator=(Server&& other) noexcept;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  EventLoop& get_loop() const;
  // Starts accepting (idempotent). Throws std::logic_error after close().
  void start_serving();
  bool is_serving() const noexcept;
  // Stops listening and closes the listening sockets (a Unix server also unlinks its path). Existing connections
  // go on. Idempotent.
  void close();
  // Calls `done` (as a loop callback) once the server is closed and its last connection has ended; at once (on
  // the next pass) if that is already so.
  void wait_closed(Callback done);
  // The same, awaitable: `co_await server.wait_closed();`.
  Future<void> wait_closed();
  // asyncio's serve_forever(): starts serving and completes once the server was closed (by close() from anywhere)
  // and its last connection ended. Unlike asyncio it completes normally rather than with CancelledError; cancelling
  // the awaiting task only stops the wait (close the server yourself).
  Future<void> serve_forever();
  // close() on every connection of this server (flush, then close) / abort() on every one.
  void close_clients();
  void abort_clients();

  // The addresses the server listens on (one per listening socket; empty after close()).
  std::vector<SocketAddress> sockets() const;
  std::size_t active_connections() const noexcept;
  explicit operator bool() const noexcept { return core_ != nullptr; }

 private:
  detail::ServerCore* core_ = nullptr;
};

}  // namespace tulipa
