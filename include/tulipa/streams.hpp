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
//   Server server = start_server(loop, echo, "127.0.0.1", 0);
//   auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port);
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
// open_connection closes the connection if it comes up later.
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
#include "tulipa/net.hpp"
#include "tulipa/server.hpp"
#include "tulipa/transport.hpp"

namespace tulipa {

class EventLoop;
class StreamReader;
class StreamWriter;

namespace detail {
class StreamConnection;
struct ConnectOp;
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

// --- awaitables (returned by the members below; `co_await` them once, right away)

// The leaf awaiter of every read: read(n), read(), readexactly(n), readline(). readuntil()'s is StreamReadUntil
// (below), which adds the borrowed separator.
//
// Size: these objects sit in the awaiting coroutine's frame (twice, with g++ 12: the operand and the awaiter), once
// per co_await site, so they are kept to 32 bytes: Suspension leaves 7 bytes of padding after its fields, and
// kind_, sep_len_ and the count go there.
class [[nodiscard]] StreamRead : public Suspension {
 public:
  enum class Kind : std::uint8_t { some, all, exactly, until, line };
  // Any kind but `until` (StreamReadUntil's). `n`: read(n)'s and readexactly(n)'s count.
  StreamRead(detail::StreamConnection* conn, Kind kind, std::uint32_t n) noexcept;
  // Movable before it suspends (coro.hpp's rule 5).
  StreamRead(StreamRead&& o) noexcept
      : Suspension(std::move(o)),
        kind_(o.kind_),
        sep_len_(o.sep_len_),
        n_(o.n_),
        conn_(std::exchange(o.conn_, nullptr)) {}
  ~StreamRead();

  bool await_ready();
  bool await_suspend(std::coroutine_handle<> h);
  Bytes await_resume();
  void describe(std::ostream& os) const final;

  // For the stream state: can this read complete (or fail) with what is buffered now?
  bool satisfied();
  // Called by the stream state when satisfied() became true: leave the waiter slot busy until resumption, wake.
  void ready() noexcept { wake(); }
  Kind kind() const noexcept { return kind_; }
  // read(n)/readexactly(n): n.
  std::size_t wanted() const noexcept { return n_; }

  // The separator of readuntil is at most this long (std::invalid_argument beyond).
  static constexpr std::size_t max_separator = UINT16_MAX;

 protected:
  // StreamReadUntil's: sep_len is 0 when the separator is empty or longer than max_separator (await_ready throws).
  StreamRead(detail::StreamConnection* conn, std::uint16_t sep_len) noexcept;

 private:
  Cancel on_cancel() noexcept final;
  bool is_until() const noexcept { return kind_ == Kind::until || kind_ == Kind::line; }
  // readuntil's separator (this is then a StreamReadUntil), or readline's "\n".
  const std::byte* separator() const noexcept;

  Kind kind_;
  std::uint16_t sep_len_ = 0;  // readuntil/readline
  union {
    std::uint32_t n_;            // read(n), readexactly(n): reads are capped to the 4 GiB a reader's buffer holds
    std::uint32_t search_from_;  // readuntil/readline: where the separator search resumes (before: searched)
  };
  detail::StreamConnection* conn_;
};

// readuntil()'s awaiter: a StreamRead that also holds the separator, borrowed: it must outlive the co_await (a
// literal or a temporary in the same expression does).
class [[nodiscard]] StreamReadUntil final : public StreamRead {
 public:
  StreamReadUntil(detail::StreamConnection* conn, std::span<const std::byte> sep) noexcept
      : StreamRead(conn, sep.size() <= max_separator ? static_cast<std::uint16_t>(sep.size()) : 0), sep_(sep.data()) {}
  StreamReadUntil(StreamReadUntil&& o) noexcept : StreamRead(std::move(o)), sep_(o.sep_) {}

 private:
  friend class StreamRead;
  const std::byte* sep_;
};

// drain() and wait_closed().
class [[nodiscard]] StreamWait final : public Suspension {
 public:
  enum class Kind : std::uint8_t { drain, closed };
  StreamWait(detail::StreamConnection* conn, Kind kind) noexcept;
  StreamWait(StreamWait&& o) noexcept : Suspension(std::move(o)), kind_(o.kind_), link_(std::exchange(o.link_, 0)) {}

  ~StreamWait();

  bool await_ready();
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume();
  void describe(std::ostream& os) const override;

  // For the stream state's list of waiters (see link_).
  void ready() noexcept;
  Kind kind() const noexcept { return kind_; }
  // The next waiter in the connection's list; null for the last one (and for one that is not in the list).
  StreamWait* next_waiter() const noexcept {
    return (link_ & 1) ? nullptr : reinterpret_cast<StreamWait*>(link_);
  }
  void set_next_waiter(StreamWait* next, detail::StreamConnection* conn) noexcept {
    link_ = next ? reinterpret_cast<std::uintptr_t>(next) : end_link(conn);
  }

 private:
  Cancel on_cancel() noexcept override;
  detail::StreamConnection* conn() const noexcept;
  static std::uintptr_t end_link(detail::StreamConnection* conn) noexcept {
    return reinterpret_cast<std::uintptr_t>(conn) | 1;
  }

  // In the awaiting coroutine's frame, like StreamRead, and 32 bytes: the two flags fill Suspension's padding,
  // and one word is both the connection and the list link. The connection's waiters form a singly linked list
  // whose last link is the connection itself, tagged with bit 0 (connections are 8-byte aligned); a waiter not in
  // the list holds that tagged pointer. So the connection is found by following the links to the tagged one (a
  // writer rarely has more than one waiter). 0: a moved-from waiter.
  Kind kind_;
  bool linked_ = false;
  std::uintptr_t link_ = 0;
};

// What read(), readexactly(), readline(), drain() and wait_closed() return: a small request (16 and 8 bytes) that
// becomes its awaiter (above) only inside the co_await. Why: g++ 12 keeps two copies of a co_await's operand in the
// coroutine frame, so a small operand instead of the 32-byte awaiter keeps a connection handler's frame small
// (a frame is per-connection memory). Await it once, right away.
class [[nodiscard]] StreamReadRequest {
 public:
  StreamRead operator co_await() const noexcept { return StreamRead(conn_, kind_, n_); }

 private:
  friend class StreamReader;
  StreamReadRequest(detail::StreamConnection* conn, StreamRead::Kind kind, std::uint32_t n) noexcept
      : conn_(conn), n_(n), kind_(kind) {}
  detail::StreamConnection* conn_;
  std::uint32_t n_;  // reads are capped to the 4 GiB a reader's buffer can hold
  StreamRead::Kind kind_;
};

class [[nodiscard]] StreamWaitRequest {
 public:
  StreamWait operator co_await() const noexcept {
    return StreamWait(reinterpret_cast<detail::StreamConnection*>(bits_ & ~std::uintptr_t{1}),
                      static_cast<StreamWait::Kind>(bits_ & 1));
  }

 private:
  friend class StreamWriter;
  // One word: the kind rides in bit 0 of the connection's address (connections are 8-byte aligned).
  StreamWaitRequest(detail::StreamConnection* conn, StreamWait::Kind kind) noexcept
      : bits_(reinterpret_cast<std::uintptr_t>(conn) | static_cast<std::uintptr_t>(kind)) {}
  std::uintptr_t bits_;
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
  StreamReadRequest read(std::ptrdiff_t n = -1) noexcept;
  // Up to and including '\n'. At EOF: what is left (possibly empty, without '\n'). No '\n' within the limit:
  // the line (up to and including its '\n' if it arrived, else everything buffered) is discarded and
  // LimitOverrunError is thrown (asyncio throws ValueError there).
  StreamReadRequest readline() noexcept;
  // Up to and including `separator` (not empty: std::invalid_argument). EOF first: IncompleteReadError with all
  // that was left. No separator within the limit: LimitOverrunError, and the data stays buffered.
  StreamReadUntil readuntil(std::string_view separator = "\n") noexcept;
  StreamReadUntil readuntil(std::span<const std::byte> separator) noexcept;
  // Exactly n bytes; EOF first: IncompleteReadError with what was left.
  StreamReadRequest readexactly(std::size_t n) noexcept;

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
  // For the library: adopts a reference the caller already took.
  static StreamReader adopt(detail::StreamConnection* c) noexcept {
    StreamReader r(Empty{});
    r.c_ = c;
    return r;
  }

 private:
  struct Empty {};
  explicit StreamReader(Empty) noexcept {}
  detail::StreamConnection* c_ = nullptr;
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
  // otherwise. Throws the connection's error, or ECONNRESET "Connection lost" once the connection is gone.
  StreamWaitRequest drain() noexcept;
  // Half-close: EOF to the peer once the buffer is flushed; reading goes on.
  void write_eof();
  bool can_write_eof() const noexcept;
  // Closes the connection (buffered data is still sent). Idempotent.
  void close();
  bool is_closing() const noexcept;
  // Waits until the connection is gone (connection_lost ran); at once if it is. Throws the error the connection
  // ended with, if any (as asyncio's wait_closed does).
  StreamWaitRequest wait_closed() noexcept;
  // The transport; null once the connection is lost (see Lifetimes at the top).
  Transport* transport() const noexcept;
  SocketAddress peername() const;
  SocketAddress sockname() const;
  StreamReader reader() const noexcept;

  // For the library: adopts a reference the caller already took.
  static StreamWriter adopt(detail::StreamConnection* c) noexcept {
    StreamWriter w;
    w.c_ = c;
    return w;
  }

 private:
  StreamWriter() noexcept = default;
  detail::StreamConnection* c_ = nullptr;
};

// A connection's two ends, for `auto [reader, writer] = co_await open_connection(...)`.
struct StreamPair {
  StreamReader reader;
  StreamWriter writer;
};

struct StreamOptions {
  std::size_t limit = stream_default_limit;
  ConnectOptions connect;
};

// The leaf awaiter of open_connection.
class [[nodiscard]] OpenConnection final : public Suspension {
 public:
  OpenConnection(std::function<void(ConnectCallback)> start, std::size_t limit) noexcept;
  OpenConnection(OpenConnection&& o) noexcept
      : Suspension(std::move(o)), start_(std::move(o.start_)), limit_(o.limit_), op_(std::move(o.op_)) {}
  ~OpenConnection();
  bool await_ready() noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  StreamPair await_resume();
  void describe(std::ostream& os) const override;
  void ready() noexcept { wake(); }

 private:
  Cancel on_cancel() noexcept override;
  std::function<void(ConnectCallback)> start_;
  std::size_t limit_;
  std::shared_ptr<detail::ConnectOp> op_;  // shared with the connect callback, which may outlive a cancelled wait
};

// Connects (see create_connection in net.hpp for host names); the awaited result is the connection's reader and
// writer. Connection errors (ECONNREFUSED...) are thrown by the co_await as std::system_error; a host name that
// does not resolve throws GaiError (dns.hpp) there.
OpenConnection open_connection(EventLoop& loop, std::string_view host, std::uint16_t port, StreamOptions options = {});
OpenConnection open_unix_connection(EventLoop& loop, std::string_view path, std::size_t limit = stream_default_limit);

// Called for each accepted connection; its coroutine becomes a task of the server's loop (asyncio's
// client_connected_cb). The function object is kept by the server and called on the loop's thread.
using ClientConnected = std::function<Coro<void>(StreamReader, StreamWriter)>;

struct StreamServerOptions {
  std::size_t limit = stream_default_limit;
  ServerOptions server;
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

}  // namespace tulipa
