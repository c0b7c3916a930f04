// Streams: asyncio's high-level connection API on coroutines (asyncio/streams.py): open_connection, start_server
// (a coroutine per connection), StreamReader, StreamWriter.
//
//   Coro<void> echo(StreamReader reader, StreamWriter writer) {
//     for (;;) {
//       Bytes data = co_await reader.read(65536);
//       if (data.empty()) break;              // EOF
//       writer.write(data);
//       co_await writer.drain();              // waits only while the transport's write buffer is above its mark
//     }
//     writer.close();
//   }
//   Server server = start_server(echo, "127.0.0.1", 0);      // on the running loop (or pass the loop first)
//   auto [reader, writer] = co_await open_connection("127.0.0.1", port);
//
// Memory (the per-connection budget): a reader and its writer share one small state object (the protocol that
// sits on the transport; 72 bytes, a block of the loop thread's pool). The reader's buffer exists only while it
// holds data: it is a chunk of the thread's pool (bytes.hpp), taken when the socket has data and given back once
// read. A pending read(n) lets the transport read straight into the chunk it then returns (no copy). Every
// awaitable here is a small object inside the awaiting coroutine's frame: waiting allocates nothing.
//
// Lifetimes: StreamReader and StreamWriter are reference-counted handles (copies refer to the same stream). The
// state lives while a handle does or the transport does. When the last handle of a connection goes, the
// connection is closed (buffered data is still sent), as a file is closed when its owner goes. The Transport*
// from StreamWriter::transport() is valid until the connection is lost (the writer then returns null).
// All of it belongs to the loop's thread: a connection's handles (and awaitables) are used, copied and destroyed
// there only, and must not outlive that thread (the connection's state is a block of the thread's pool). Only a
// reader without transport (StreamReader(limit)) may be moved to another thread and destroyed there.
//
// Cancellation: every awaitable here follows the protocol in coro.hpp. A cancelled read leaves the buffered data
// in the reader (nothing is lost); a cancelled drain()/wait_closed() just stops waiting; a cancelled
// open_connection stops the attempt and closes the connection if it came up meanwhile.
//
// Errors: reads throw the connection's error (std::system_error, e.g. ECONNRESET) once it is known, as asyncio
// does; drain() throws it too, or std::system_error(ECONNRESET, "Connection lost") once the connection is gone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "tulipa/bytes.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/detail/stream_awaiters.hpp"
#include "tulipa/net.hpp"
#include "tulipa/server.hpp"
#include "tulipa/transport.hpp"

namespace tulipa {

class EventLoop;
class StreamReader;
class StreamWriter;

namespace detail {
class StreamReaderProtocol;
struct StreamAccess;
}  // namespace detail

// asyncio's _DEFAULT_LIMIT: how much readline()/readuntil() buffer while looking for the separator, and half the
// buffered amount above which the reader stops reading from the socket (flow control).
inline constexpr std::size_t stream_default_limit = 64 * 1024;

// readuntil()/readline() found no separator within `limit` bytes (or found it beyond). consumed(): how many bytes
// must be consumed to get past the point reached (asyncio's LimitOverrunError.consumed).
class LimitOverrunError : public std::runtime_error {
 public:
  LimitOverrunError(const std::string& what, std::size_t consumed) : std::runtime_error(what), consumed_(consumed) {}
  std::size_t consumed() const noexcept { return consumed_; }

 private:
  std::size_t consumed_;
};

// EOF came before the read was complete. partial(): what was read (removed from the reader); expected(): how many
// bytes were asked for (readexactly), or nullopt when a separator was expected (readuntil).
class IncompleteReadError : public std::runtime_error {
 public:
  IncompleteReadError(Bytes partial, std::optional<std::size_t> expected);
  const Bytes& partial() const noexcept { return *partial_; }
  std::optional<std::size_t> expected() const noexcept { return expected_; }

 private:
  std::shared_ptr<Bytes> partial_;  // shared: exceptions are copied
  std::optional<std::size_t> expected_;
};

// --- the reader

class StreamReader {
 public:
  // A reader with no transport, fed by feed_data()/feed_eof() (asyncio's StreamReader()).
  explicit StreamReader(std::size_t limit = stream_default_limit);
  StreamReader(const StreamReader& o) noexcept;
  StreamReader(StreamReader&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  StreamReader& operator=(StreamReader o) noexcept {
    std::swap(c_, o.c_);
    return *this;
  }
  ~StreamReader();

  // Up to n bytes: at least one, fewer only if fewer are buffered; empty at EOF. n < 0: everything until EOF.
  // n == 0: empty at once.
  detail::StreamReadRequest read(std::ptrdiff_t n = -1) noexcept;
  // Up to and including '\n'. At EOF: what is left (possibly empty, without '\n'). No '\n' within the limit:
  // the line (up to and including its '\n' if it arrived, else everything buffered) is discarded and
  // LimitOverrunError is thrown (asyncio throws ValueError there).
  detail::StreamReadRequest readline() noexcept;
  // Up to and including `separator` (not empty: std::invalid_argument). EOF first: IncompleteReadError with all
  // that was left. No separator within the limit: LimitOverrunError, and the data stays buffered. The separator
  // is borrowed: it must outlive the co_await (a literal, or a temporary in the same expression, does).
  detail::StreamReadUntil readuntil(std::string_view separator = "\n") noexcept;
  detail::StreamReadUntil readuntil(std::span<const std::byte> separator) noexcept;
  // Exactly n bytes; EOF first: IncompleteReadError with what was left.
  detail::StreamReadRequest readexactly(std::size_t n) noexcept;

  // EOF was received and the buffer is empty.
  bool at_eof() const noexcept;
  // For a reader without transport (and the tests): adds data / marks EOF / sets the error reads will throw.
  void feed_data(std::span<const std::byte> data);
  void feed_data(std::string_view text) { feed_data(std::as_bytes(std::span(text.data(), text.size()))); }
  void feed_eof();
  void set_exception(std::exception_ptr e);
  std::exception_ptr exception() const noexcept;
  std::size_t limit() const noexcept;
  // Bytes buffered now.
  std::size_t buffered() const noexcept;

  explicit operator bool() const noexcept { return c_ != nullptr; }

 private:
  friend struct detail::StreamAccess;  // makes handles from the connection's state
  struct Adopt {};
  StreamReader(detail::StreamReaderProtocol* adopted, Adopt) noexcept : c_(adopted) {}
  detail::StreamReaderProtocol* c_ = nullptr;
};

// --- the writer

class StreamWriter {
 public:
  StreamWriter(const StreamWriter& o) noexcept;
  StreamWriter(StreamWriter&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  StreamWriter& operator=(StreamWriter o) noexcept {
    std::swap(c_, o.c_);
    return *this;
  }
  ~StreamWriter();

  // Sends at once what the kernel takes, buffers the rest in the transport (the span may be reused right away).
  // Once the connection is lost, writes are dropped (asyncio's behaviour); after write_eof() they throw
  // std::logic_error.
  void write(std::span<const std::byte> data);
  void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }
  void writelines(std::span<const std::span<const std::byte>> pieces);
  // Waits while the transport's write buffer is above its high-water mark (set_write_buffer_limits); at once
  // otherwise. Throws the connection's error, or ECONNRESET "Connection lost" once the connection is gone. After
  // close() it waits until the connection is gone, then throws (asyncio's ConnectionResetError).
  detail::StreamWaitRequest drain() noexcept;
  // Half-close: EOF to the peer once the buffer is flushed; reading goes on.
  void write_eof();
  bool can_write_eof() const noexcept;
  // Closes the connection (buffered data is still sent). Idempotent.
  void close();
  bool is_closing() const noexcept;
  // Waits until the connection is gone (connection_lost ran); at once if it is. Throws the error the connection
  // ended with, if any (as asyncio's wait_closed does).
  detail::StreamWaitRequest wait_closed() noexcept;
  // The transport; null once the connection is lost (see Lifetimes at the top).
  Transport* transport() const noexcept;
  SocketAddress peername() const;
  SocketAddress sockname() const;
  StreamReader reader() const noexcept;

 private:
  friend struct detail::StreamAccess;  // makes handles from the connection's state
  struct Adopt {};
  StreamWriter(detail::StreamReaderProtocol* adopted, Adopt) noexcept : c_(adopted) {}
  detail::StreamReaderProtocol* c_ = nullptr;
};

// A connection's two ends, for `auto [reader, writer] = co_await open_connection(...)`.
struct StreamPair {
  StreamReader reader;
  StreamWriter writer;
};

struct StreamOptions {
  std::size_t limit = stream_default_limit;
  ConnectOptions connect{};
};

// Connects (see create_connection in net.hpp for host names) and returns the connection's reader and writer: a
// coroutine that awaits create_connection, as asyncio's. Connection errors (ECONNREFUSED...) are thrown by the
// co_await as std::system_error; a host name that does not resolve throws GaiError (dns.hpp) there; a bad limit
// std::invalid_argument. Nothing starts before the co_await. Cancelling the awaiting task stops the attempt where
// it is (the lookup is abandoned, the socket closed); a connection that came up meanwhile is closed.
Coro<StreamPair> open_connection(EventLoop& loop, std::string_view host, std::uint16_t port,
                                 StreamOptions options = {});
Coro<StreamPair> open_unix_connection(EventLoop& loop, std::string_view path, std::size_t limit = stream_default_limit);
// The same on the running loop (std::runtime_error when none runs on this thread).
Coro<StreamPair> open_connection(std::string_view host, std::uint16_t port, StreamOptions options = {});
Coro<StreamPair> open_unix_connection(std::string_view path, std::size_t limit = stream_default_limit);

// Called for each accepted connection; its coroutine becomes a task of the server's loop (asyncio's
// client_connected_cb). The function object is kept by the server and called on the loop's thread.
using ClientConnected = std::function<Coro<void>(StreamReader, StreamWriter)>;

struct StreamServerOptions {
  std::size_t limit = stream_default_limit;
  ServerOptions server{};
};

// Listens like create_server (net.hpp; binding errors throw from here) and runs `client_connected` as a task per
// connection. The task's reader and writer are the connection's only handles: when the coroutine returns (or
// throws), the connection is closed unless it kept a copy somewhere. An exception escaping the coroutine is
// reported through the loop's exception handler ("Task exception was never retrieved").
// Hosts as the synchronous create_server takes them: numeric ones, "" and "localhost"; any other name throws
// std::invalid_argument pointing to start_server_async.
Server start_server(EventLoop& loop, ClientConnected client_connected, std::string_view host, std::uint16_t port,
                    StreamServerOptions options = {});
// asyncio's `server = await asyncio.start_server(...)`, for any host name (create_server_async in net.hpp):
//   `Server server = co_await start_server_async(loop, handle_client, "my-host", 0);`
// A name is looked up on the DNS pool and every address it gives is bound; the Future fails with GaiError when it
// does not resolve and std::system_error when binding fails. A numeric host or "" is bound before this returns
// (the Future is already done). Cancelling the Future while the name is looked up binds nothing. A missing
// callback or a bad limit throws std::invalid_argument at once.
Future<Server> start_server_async(EventLoop& loop, ClientConnected client_connected, std::string_view host,
                                  std::uint16_t port, StreamServerOptions options = {});
Server start_unix_server(EventLoop& loop, ClientConnected client_connected, std::string_view path,
                         StreamServerOptions options = {});
// The same on the running loop (std::runtime_error when none runs on this thread).
inline Server start_server(ClientConnected client_connected, std::string_view host, std::uint16_t port,
                           StreamServerOptions options = {}) {
  return start_server(get_running_loop(), std::move(client_connected), host, port, std::move(options));
}
inline Future<Server> start_server_async(ClientConnected client_connected, std::string_view host, std::uint16_t port,
                                         StreamServerOptions options = {}) {
  return start_server_async(get_running_loop(), std::move(client_connected), host, port, std::move(options));
}
inline Server start_unix_server(ClientConnected client_connected, std::string_view path,
                                StreamServerOptions options = {}) {
  return start_unix_server(get_running_loop(), std::move(client_connected), path, std::move(options));
}

}  // namespace tulipa
