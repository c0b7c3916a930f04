// The HTTP/1.1 server: a Protocol per connection on tulipa's transports, a Router (router.hpp) for the handlers.
//
//   http::Router router;
//   router.get("/", [](http::Request&) { return http::Response(200, "Hello, World!"); });
//   http::Server server = http::serve(loop, std::move(router), "127.0.0.1", 8080);
//   ...
//   co_await server.shutdown(std::chrono::seconds(5));
//
// What a connection does:
// - Parses requests straight from the loop's read buffer (parser.hpp, framing.hpp); only the bytes of a request
//   that is not complete at the end of a read are copied, into the connection's own buffer (freed when it empties).
// - Keep-alive (HTTP/1.1 by default, HTTP/1.0 with "Connection: keep-alive"), "Connection: close", pipelining:
//   requests are answered strictly in order, and all answers to one read leave in one write. While a coroutine
//   handler runs, the connection reads ahead at most `max_read_ahead` bytes, then stops reading from the socket;
//   while the transport's write buffer is over its high-water mark (a peer that does not read), it answers nothing
//   more and stops reading.
// - HEAD gets the GET handler's head (its Content-Length) without the body; 1xx, 204 and 304 get no body;
//   "Expect: 100-continue" is answered with 100 Continue once the head was accepted (never when the head is
//   refused: then the final status goes out at once); chunked request bodies are decoded; a Date field, formatted
//   once per second.
// - Errors: every malformed or over-limit request gets its status (400, 408, 413, 414, 431, 501, 505) with
//   "Connection: close", then the connection is closed; each is logged in one line through the loop's log
//   handler (EventLoop::log), with the peer and the reason. A handler that throws gets a 500 (logged; the
//   connection stays usable when the request's body was read whole).
// - Timeouts: `header_timeout` is a total deadline for a request head from its first byte (a peer trickling a
//   byte at a time is cut when it passes: 408); a body must arrive at `min_body_rate` bytes per second or better,
//   measured over each `sweep` interval after a grace of `header_timeout` (408); a connection idle between requests
//   is closed after `keep_alive_timeout` (no response, no log line: that is normal life).
//
// Memory: an idle keep-alive connection holds the transport (80 bytes) and this protocol (64 bytes, no buffer).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "tulipa/clock.hpp"
#include "tulipa/future.hpp"
#include "tulipa/http/parser.hpp"
#include "tulipa/http/router.hpp"
#include "tulipa/server.hpp"

namespace tulipa {
class EventLoop;
}

namespace tulipa::http {

struct ServerConfig {
  HeadLimits head{};                       // request line 8 KiB (414), head 64 KiB (431)
  std::size_t max_headers = 100;           // 431 above this
  std::uint64_t max_body = 8u << 20;       // 413 above this (declared, or as chunks arrive)
  std::size_t max_read_ahead = 64 * 1024;  // bytes buffered after the request being handled (pipelining)
  Duration header_timeout = std::chrono::seconds(10);
  Duration keep_alive_timeout = std::chrono::seconds(30);
  std::uint64_t min_body_rate = 1024;  // bytes per second while a body is expected
  // How often deadlines are checked (one timer per server, not per connection); 0: a quarter of the shortest
  // timeout above, at most one second.
  Duration sweep = Duration::zero();
  ServerOptions listen{};  // backlog, reuse_port, ... (server.hpp)
};

namespace detail {
struct ServerState;
}

class Server {
 public:
  Server() noexcept = default;
  Server(Server&&) noexcept;
  Server& operator=(Server&&) noexcept;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Stops listening and aborts the remaining connections (use shutdown() to let them finish first).
  ~Server();

  // The addresses listened on (empty when the server only serves through factory()).
  std::vector<SocketAddress> sockets() const;
  std::size_t active_connections() const noexcept;

  // A protocol factory serving this server's routes on any transport: pass it to create_server with an SslContext
  // for https (the SslContext should offer ALPN "http/1.1"), or to create_unix_server. Those listeners are the
  // caller's; shutdown() ends their connections too (they count in active_connections()). `encrypted`: the
  // transports encrypt (TLS): file bodies then go through the transport instead of sendfile(2) on the socket.
  ProtocolFactory factory(bool encrypted = false) const;

  // Graceful shutdown: stops listening, closes idle connections at once, lets each connection with a request in
  // progress finish that response (sent with "Connection: close"), and aborts whatever is still open after
  // `grace`. Completes when the last connection ended.
  Future<void> shutdown(Duration grace = std::chrono::seconds(10));

  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  friend Server serve(EventLoop&, Router, std::string_view, std::uint16_t, ServerConfig);
  friend Server make_server(EventLoop&, Router, ServerConfig);
  explicit Server(std::shared_ptr<detail::ServerState> state) noexcept;
  std::shared_ptr<detail::ServerState> state_;
};

// Listens on host:port (as tulipa::create_server: numeric hosts, "", "localhost"; port 0 picks a free one, read it
// back from sockets()). Throws std::system_error when it cannot bind.
Server serve(EventLoop& loop, Router router, std::string_view host, std::uint16_t port, ServerConfig config = {});
// A server that listens nowhere itself: serve it through factory() (https, Unix sockets).
Server make_server(EventLoop& loop, Router router, ServerConfig config = {});

}  // namespace tulipa::http
