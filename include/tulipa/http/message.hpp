// Request and Response: what a handler of the HTTP server (server.hpp) sees and returns.
//
// Lifetimes: every view a Request hands out (method, target, path, headers, params, body) points into memory the
// server owns for the request. A synchronous handler's Request is valid until the handler returns (its views may
// point straight into the loop's read buffer: a request that arrived whole is never copied). A coroutine handler's
// Request lives in the server's copy until the handler's coroutine finishes. Copy what you keep longer.
//
// Upgrades (WebSocket, or any protocol that takes over the connection after a 101): a handler returns a Response
// with status 101 (its Upgrade/Connection/Sec-* fields set by the handler) and calls
// `response.upgrade(std::move(protocol))`. After the server wrote that response head, it hands the connection
// over: `transport.set_protocol(protocol)`, then `protocol->connection_made(transport)`, then the bytes the peer
// already sent after the request (read ahead by the server) through `data_received` (or get_buffer/buffer_updated
// for a BufferedProtocol), all within one loop callback, before any further read. From then on the new protocol
// owns the conversation as any protocol does (protocol.hpp: it gets connection_lost, and the transport destroys it
// at the end); the HTTP server forgets the connection (graceful shutdown and timeouts no longer apply to it).
// A response with an upgrade protocol but a status other than 101 sends the response and drops the protocol.
//
// The raw form, for a protocol that writes its own answer (websocket::upgrade writes the 101 or the refusal and
// swaps the protocol itself): return `Response::take_over(fn)`. After the answers to earlier requests were
// written, the server forgets the connection and calls `fn(transport, already_read)` (the Request is still valid
// during the call); `fn` writes what it wants, and may set a new protocol with transport.set_protocol(), returning
// what set_protocol returned (the HTTP connection, which the server then destroys once its method returned), or
// null when it left the HTTP connection in place (e.g. it refused and closed the transport).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "tulipa/coro.hpp"
#include "tulipa/http/parser.hpp"
#include "tulipa/protocol.hpp"

namespace tulipa {
class Transport;
}

namespace tulipa::http {

namespace detail {
class Connection;
struct Exchange;
}  // namespace detail

// The writing end of a streamed body, sent chunked: a server's streamed response (Response::set_stream_body), a
// client's streamed request (Client::request_stream). write() sends `data` as one chunk (nothing for an empty
// view; the bytes are copied before it suspends) and completes once the transport's write buffer is back under its
// low-water mark when it had gone over the high-water one, so a producer never runs ahead of a slow peer by more
// than the buffer's high-water mark and one piece. It throws std::system_error (errc::connection_reset) once the
// connection is gone; the producer should let that propagate.
class BodyWriter {
 public:
  virtual Coro<void> write(std::string_view data) = 0;

 protected:
  ~BodyWriter() = default;
};
// Writes a body through the writer it is given, then returns (the end of the body). Whatever it captures lives
// until it finished.
using BodyProducer = std::function<Coro<void>(BodyWriter&)>;

// The reading end of a request body streamed to a handler (a route whose handler takes `(Request&, BodyReader&)`,
// router.hpp). The server hands over the body as it arrives (decoded if chunked) and stops reading the socket
// while more than `ServerConfig::max_read_ahead` bytes wait for the handler; the body limit (`max_body`) is checked
// as the bytes arrive (413 at once, and read() throws).
class BodyReader {
 public:
  // The next piece of the body, or an empty view once it ended. The view stays valid until the next call to read()
  // (or the handler's end). Throws std::runtime_error when the body was refused (413, a malformed chunk) or the
  // connection was lost. Call it from the handler's task, one read at a time.
  Coro<std::string_view> read();
  // The rest of the body in one string (for a handler that decided it wants it whole after all).
  Coro<std::string> read_all();
  // Bytes of the body received so far (handed out or waiting), and whether the body ended.
  std::uint64_t received() const noexcept;
  bool at_end() const noexcept;
  // Bytes received and not handed out yet (bounded by max_read_ahead and one read of the socket).
  std::size_t buffered() const noexcept;

 private:
  friend struct detail::Exchange;
  explicit BodyReader(detail::Exchange& ex) noexcept : ex_(&ex) {}
  detail::Exchange* ex_;
};

// A route parameter: the value of `{name}` in the route's pattern, for this request's path.
struct Param {
  std::string_view name{};
  std::string_view value{};
};

class Request {
 public:
  static constexpr std::size_t max_params = 8;

  std::string_view method() const noexcept { return method_; }
  // The request target as sent ("/rooms/a%20b?x=1"), its path ("/rooms/a%20b", still percent-encoded) and its
  // query ("x=1", without the '?'; empty when absent).
  std::string_view target() const noexcept { return target_; }
  std::string_view path() const noexcept { return path_; }
  std::string_view query() const noexcept { return query_; }
  int minor_version() const noexcept { return minor_version_; }  // HTTP/1.0 or HTTP/1.1

  std::span<const Header> headers() const noexcept { return headers_; }
  // The value of the first field named `name` (ASCII case-insensitive), or `fallback` when there is none.
  std::string_view header(std::string_view name, std::string_view fallback = {}) const noexcept;
  bool has_header(std::string_view name) const noexcept;

  // The route's parameters, in pattern order.
  std::span<const Param> params() const noexcept { return {params_.data(), param_count_}; }
  // The value of the route's `{name}` segment, or `fallback` (percent-encoding left as sent).
  std::string_view param(std::string_view name, std::string_view fallback = {}) const noexcept;

  // The whole body (decoded if it came chunked); empty for a handler that takes the body as a stream (BodyReader).
  std::string_view body() const noexcept { return body_; }

  // Whether the connection stays open after the response (HTTP/1.1 without "Connection: close", HTTP/1.0 with
  // "Connection: keep-alive", and the server is not shutting down).
  bool keep_alive() const noexcept { return keep_alive_; }
  // "Connection: upgrade" with an "Upgrade" field (the WebSocket handshake has both).
  bool wants_upgrade() const noexcept { return upgrade_; }

  // The connection's transport, for peername() and the like. Writing to it from a handler breaks the framing; an
  // upgrade goes through Response::upgrade.
  Transport& transport() const noexcept { return *transport_; }

 private:
  friend class detail::Connection;
  friend struct detail::Exchange;
  friend class Router;

  std::string_view method_, target_, path_, query_, body_;
  std::span<const Header> headers_;
  std::array<Param, max_params> params_{};
  std::uint8_t param_count_ = 0;
  std::uint8_t minor_version_ = 1;
  bool keep_alive_ = true;
  bool upgrade_ = false;
  Transport* transport_ = nullptr;
};

// The status line's reason phrase for a status code ("Not Found"); "Unknown" for codes it does not know.
std::string_view reason_phrase(int status) noexcept;

class Response {
 public:
  // The default content type of a body set without one.
  static constexpr std::string_view text_plain = "text/plain; charset=utf-8";

  explicit Response(int status = 200) noexcept : status_(status) {}
  Response(int status, std::string body, std::string_view content_type = text_plain);

  int status() const noexcept { return status_; }
  Response& set_status(int status) noexcept {
    status_ = status;
    return *this;
  }

  // Adds a field to the head, as given. The server writes Date, Content-Length / Transfer-Encoding and Connection
  // itself: setting them here is an error (std::invalid_argument), as are CR or LF in a name or value.
  Response& add_header(std::string_view name, std::string_view value);
  std::string_view extra_headers() const noexcept { return headers_; }  // "Name: value\r\n" lines

  // The body (owned), and its content type (copied; up to 63 bytes are kept inline, more go to the heap).
  Response& set_body(std::string body, std::string_view content_type = text_plain);
  // A body the caller keeps alive until the response was written (the handler returned, for a synchronous handler
  // whose answer the transport takes at once; to be safe, storage with static duration).
  Response& set_static_body(std::string_view body, std::string_view content_type = text_plain);
  std::string_view body() const noexcept { return static_body_.data() ? static_body_ : std::string_view(body_); }
  std::string_view content_type() const noexcept;

  // A body read from a file (static files, static.hpp): `length` bytes from `offset` of `fd`, which the response
  // owns (closed when the response is destroyed or sent). The server sends it with sendfile(2) on plain sockets.
  Response& set_file_body(int fd, std::uint64_t offset, std::uint64_t length, std::string_view content_type);
  int file_fd() const noexcept { return file_.fd; }
  std::uint64_t file_offset() const noexcept { return file_.offset; }
  // The body's length: the file range's, or the bytes'.
  std::uint64_t body_length() const noexcept { return file_.fd >= 0 ? file_.length : body().size(); }
  // Gives up the file (the caller closes it).
  int release_file() noexcept { return std::exchange(file_.fd, -1); }

  // A body written by `producer` after the head, sent chunked ("Transfer-Encoding: chunked"; to an HTTP/1.0 client
  // as is, ending with the connection). The server runs it as a task once the answers to earlier requests left,
  // and reads no further request meanwhile. A producer that throws after the head went out cannot change the
  // status any more: the server logs it and aborts the connection (the client sees a truncated body). HEAD, 204
  // and 304 answers never run it.
  Response& set_stream_body(BodyProducer producer, std::string_view content_type = text_plain);
  BodyProducer& stream_producer() noexcept { return producer_; }
  bool has_stream_body() const noexcept { return static_cast<bool>(producer_); }

  // Hands the connection to `protocol` after this response (status 101): see the top of this file.
  Response& upgrade(std::unique_ptr<StreamProtocol> protocol) noexcept {
    upgrade_ = std::move(protocol);
    return *this;
  }
  std::unique_ptr<StreamProtocol>& upgrade_protocol() noexcept { return upgrade_; }

  using TakeOver =
      std::function<std::unique_ptr<StreamProtocol>(Transport& transport, std::span<const std::byte> already_read)>;
  static Response take_over(TakeOver fn) {
    Response r(101);
    r.take_over_ = std::move(fn);
    return r;
  }
  TakeOver& take_over_function() noexcept { return take_over_; }

 private:
  int status_;
  std::uint8_t content_type_size_ = 0;  // 0: none or long_content_type_; else the bytes in content_type_
  std::array<char, 63> content_type_{};
  std::string long_content_type_;
  std::string headers_;
  std::string body_;
  std::string_view static_body_;
  std::unique_ptr<StreamProtocol> upgrade_;
  TakeOver take_over_;
  BodyProducer producer_;
  struct File {
    File() noexcept = default;
    File(File&& o) noexcept : fd(std::exchange(o.fd, -1)), offset(o.offset), length(o.length) {}
    File& operator=(File&& o) noexcept;
    ~File();
    int fd = -1;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
  } file_;
};

}  // namespace tulipa::http
