// The HTTP/1.1 client, on tulipa's streams (streams.hpp, tls_streams.hpp), with the framing of framing.hpp.
//
//   http::Client client(loop);
//   http::ClientResponse r = co_await client.get("http://127.0.0.1:8080/rooms");
//   r = co_await client.request("POST", "https://example.com/api", body, {{"Content-Type", "application/json"}});
//   // or, with the loop's shared client: co_await http::get(url)
//
// - A pool of idle connections per (scheme, host, port), kept for `idle_timeout` (below the 5 s that Node, and the
//   60-75 s that nginx and Apache keep an idle connection, so that we drop it before the server does), at most
//   `max_idle_per_host` each.
// - Response bodies framed by Content-Length, chunked (decoded), or until the server closes; HEAD, 1xx, 204, 304
//   have none. Request bodies: a string (Content-Length), or written piece by piece by a BodyProducer and sent
//   chunked (request_stream), each piece waiting for the connection to drain.
// - Redirects (301, 302, 303, 307, 308) followed up to `max_redirects` (then the last redirect is returned);
//   303, and 301/302 after a POST, become a GET without a body; a redirect to another origin drops no header the
//   caller gave but never forwards them... beyond what the caller passed for this call.
// - Timeouts: `connect_timeout` for each connection (TCP and TLS handshake), `total_timeout` for the whole call
//   (TimeoutError, timeout.hpp).
// - https: an SslContext::client() (verification of the chain and the host name on) unless one is given; ALPN
//   offers http/1.1.
// - A pooled connection the server closed meanwhile: the request is sent again on a new connection only when its
//   method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) and not one byte of the response had arrived.
// - Cancellation (or a timeout, or any error) never returns a connection to the pool: only a connection whose
//   response was read to its end, with keep-alive, goes back.
// Errors: std::invalid_argument for a URL it cannot use, the connect errors of open_connection, ProtocolError for a
// malformed response.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tulipa/clock.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/http/message.hpp"
#include "tulipa/http/parser.hpp"
#include "tulipa/tls.hpp"

namespace tulipa {
class EventLoop;
}

namespace tulipa::http {

class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ClientOptions {
  int max_redirects = 5;
  Duration connect_timeout = std::chrono::seconds(10);
  Duration total_timeout = std::chrono::seconds(60);
  Duration idle_timeout = std::chrono::seconds(4);
  std::size_t max_idle_per_host = 8;
  std::uint64_t max_body = 64u << 20;  // ProtocolError beyond
  HeadLimits head{};
  std::optional<SslContext> ssl{};  // https; default: SslContext::client() with ALPN http/1.1
};

struct ClientResponse {
  int status = 0;
  std::string reason{};
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};
  std::string url{};  // the URL that answered (after redirects)
  // The first field named `name` (case-insensitive), or "".
  std::string_view header(std::string_view name) const noexcept;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class Client {
 public:
  explicit Client(EventLoop& loop, ClientOptions options = {});
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();  // closes the idle connections

  Coro<ClientResponse> request(std::string method, std::string url, std::string body = {}, HeaderList headers = {});
  // Sends the body that `body` writes (message.hpp's BodyWriter) as it comes, with "Transfer-Encoding: chunked";
  // each write waits while the connection's write buffer is above its high-water mark. The body is produced
  // once: such a request is never sent again (no stale-connection retry; a 307/308 redirect, which would need the
  // body again, is returned as it is; a 303, or a 301/302 after a POST, is followed as a GET without a body).
  Coro<ClientResponse> request_stream(std::string method, std::string url, BodyProducer body, HeaderList headers = {});
  Coro<ClientResponse> get(std::string url, HeaderList headers = {}) {
    return request("GET", std::move(url), {}, std::move(headers));
  }
  // Idle connections in the pool (all origins).
  std::size_t idle_connections() const noexcept;
  // Connections opened so far (for tests and statistics: keep-alive reuse shows as fewer connections than calls).
  std::uint64_t connections_opened() const noexcept;
  void close_idle() noexcept;

  struct Impl;  // src/http/client.cpp

 private:
  std::shared_ptr<Impl> impl_;
};

// With the running loop's shared Client (made on first use, closed with the loop).
Coro<ClientResponse> request(std::string method, std::string url, std::string body = {}, HeaderList headers = {});
Coro<ClientResponse> get(std::string url, HeaderList headers = {});

}  // namespace tulipa::http
