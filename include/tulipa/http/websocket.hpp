// WebSocket (RFC 6455) with permessage-deflate (RFC 7692): server and client, in two forms.
//
// The callback form (the hot path): a Handler per connection, called by the connection, which is the protocol of
// the transport. Messages arrive whole (or as fragments, Options::fragments) in pooled memory the handler may keep
// (a Bytes), so echoing or storing a message copies nothing and allocates nothing in steady state.
//
//   struct Echo : websocket::Handler {
//     void on_message(websocket::Connection& ws, websocket::Message&& m) override { ws.send(m.data, m.text); }
//   };
//   Server s = websocket::serve(loop, [](const websocket::UpgradeRequest&) { return std::make_unique<Echo>(); },
//                               "127.0.0.1", 8080);
//
// The coroutine form: a WebSocket handle with receive / send / close, each a cancellable await.
//
//   WebSocket ws = co_await websocket::connect("ws://127.0.0.1:8080/chat");
//   co_await ws.send("hello");
//   Message m = co_await ws.receive();            // throws ConnectionClosed once the connection is closed
//   co_await ws.close(close_code::normal, "bye");
//
// Fan-out: PreparedMessage frames a message once (and compresses it once per deflate window size) and is written to
// any number of connections by reference (see PreparedMessage).
//
// The close handshake (RFC 6455 section 7): a close frame received is echoed (same code), then the server closes
// TCP at once and the client waits (close_timeout) for the server to do so. After a close frame was sent, send()
// sends nothing more. A protocol error from the peer is answered with a close frame whose code says why (1002
// framing, 1007 invalid UTF-8, 1009 too big, 1008/1013 slow consumer) and the connection is closed.
//
// Lifetimes: a Connection& is valid from on_open until on_close returns (the transport owns the connection, which
// owns its handler). A Message's Bytes is the handler's to keep. Everything runs on the loop's thread.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tulipa/bytes.hpp"
#include "tulipa/clock.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/http/websocket_frame.hpp"
#include "tulipa/server.hpp"
#include "tulipa/transport.hpp"

namespace tulipa {
class SslContext;
}
namespace tulipa::http {
class Request;
class Response;
}  // namespace tulipa::http

namespace tulipa::websocket {

// permessage-deflate settings. The defaults follow Python websockets': 4 KiB windows (12 bits) both ways, when the
// peer lets us ask (client_max_window_bits offered, as browsers do), and memLevel 5. A connection holds zlib streams
// only while a message goes through them (they come from a per-thread pool: about 11 KiB for an inflater, 38 KiB for
// a compressor, per message in progress on the thread); between messages it keeps only, for context takeover, the
// last 2^window_bits bytes each way: at most 8 KiB with the default 12 bits (a peer that insists on 15 bits: up to
// 32 KiB more), nothing with no_context_takeover both ways (ws_api_test's
// CompressionMemoryBetweenMessagesIsTheWindowsOnly). Connection::compression_memory() reports what it holds.
struct DeflateOptions {
  bool enabled = true;                    // offer it (client) / accept an offer (server)
  std::uint8_t window_bits = 12;          // our compressor's window (9..15; the peer may ask for less)
  std::uint8_t inflate_window_bits = 12;  // ask the peer to compress with at most this window, when it lets us ask
  std::uint8_t mem_level = 5;             // zlib memLevel of our compressor (1..9)
  bool no_context_takeover = false;       // reset our compressor after each message (less memory held, worse ratio)
  bool request_peer_no_context_takeover = false;  // ask the peer for the same
  // Messages smaller than this are sent uncompressed (compression only where it pays: a short message grows).
  std::size_t min_size = 64;
};

// What to do when a peer does not read and a connection's queued output exceeds Options::send_queue_limit.
enum class SlowConsumer : std::uint8_t {
  wait,  // keep queuing: the coroutine send() waits for the queue to drain; the callback form sees
         // Connection::buffered_amount() grow and Handler::on_drain() when it went back down
  drop,  // close the connection with Options::drop_code and reason "slow consumer: send queue full", dropping
         // what was queued
};

struct UpgradeRequest;

struct Options {
  // Largest message accepted, counted as it is received (after inflating, as it is inflated): 1009 beyond.
  std::size_t max_message_size = 1024 * 1024;
  // Deliver each data frame as it completes (Message::fin says which ends the message) instead of whole messages.
  bool fragments = false;
  // Outgoing messages larger than this are split into frames of this size (0: one frame per message).
  std::size_t max_frame_size = 0;
  // Keepalive: a ping every ping_interval; no pong within pong_timeout fails the connection with 1011 ("keepalive
  // ping timeout"). Zero disables. Pings from the peer are always answered (until our close frame is sent).
  Duration ping_interval = std::chrono::seconds(20);
  Duration pong_timeout = std::chrono::seconds(20);
  // How long to wait for the peer's close frame (or, as a client, for the server to close TCP) before aborting.
  Duration close_timeout = std::chrono::seconds(10);
  // Bytes of output queued (ours and the transport's) above which the slow-consumer policy applies.
  std::size_t send_queue_limit = 1024 * 1024;
  SlowConsumer slow_consumer = SlowConsumer::wait;
  std::uint16_t drop_code = close_code::policy_violation;  // 1008, or try_again_later (1013)
  DeflateOptions deflate{};
  // Subprotocols: a client offers these in order; a server picks the first of the client's offers it lists here.
  std::vector<std::string> subprotocols{};
  // Server: called with the request's Origin header (empty when there is none); return false to refuse with 403
  // (cross-site WebSocket hijacking). Null: every origin is accepted. See same_origin() below.
  std::function<bool(const UpgradeRequest&)> check_origin;
  // Server: the largest handshake request head (431 beyond); client: the largest response head.
  std::size_t max_handshake_size = 16 * 1024;
  // Extra request headers for the client's handshake ("Name: value" lines without CRLF) and the server's answer.
  std::vector<std::string> extra_headers{};
};

// An Origin check that accepts requests without Origin (non-browser clients) and those whose Origin's host equals
// the Host header (same origin), plus any of `allowed` (full origins, "https://example.com").
std::function<bool(const UpgradeRequest&)> same_origin(std::vector<std::string> allowed = {});

// A received message (or fragment, with Options::fragments).
struct Message {
  Bytes data{};
  bool text = false;
  bool fin = true;  // false: more fragments of this message follow (Options::fragments only)
  std::string_view view() const noexcept { return data.view(); }
};

// A message framed once for many receivers. The frame bytes live in one reference-counted buffer; sending it
// writes those bytes to the transport, and a connection whose peer is slow queues a reference, not a copy
// (Connection's send queue). With permessage-deflate, the message is compressed once per compressor window size
// among the receivers (lazily, on first use), with a fresh compressor so that any receiver can inflate it (the
// sending connection resets its own compressor afterwards). Server side only (clients must mask per frame).
class PreparedMessage {
 public:
  PreparedMessage(std::span<const std::byte> payload, bool text);
  explicit PreparedMessage(std::string_view text)
      : PreparedMessage(std::as_bytes(std::span(text.data(), text.size())), true) {}
  PreparedMessage(const PreparedMessage&) noexcept = default;
  PreparedMessage& operator=(const PreparedMessage&) noexcept = default;
  ~PreparedMessage();

  struct Shared;  // the frame bytes (src/http/websocket/prepared.hpp)
  Shared* shared() const noexcept { return shared_.get(); }
  const std::shared_ptr<Shared>& shared_ref() const noexcept { return shared_; }

 private:
  std::shared_ptr<Shared> shared_;
};

class Connection;

// The callback form's per-connection object. Every method runs on the loop's thread; an exception thrown here is
// reported through the loop's exception handler and the connection is aborted (protocol.hpp's rule).
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void on_open(Connection& ws) { (void)ws; }
  virtual void on_message(Connection& ws, Message&& message) = 0;
  virtual void on_ping(Connection& ws, std::span<const std::byte> payload) { (void)ws, (void)payload; }
  virtual void on_pong(Connection& ws, std::span<const std::byte> payload) { (void)ws, (void)payload; }
  // Output queued went back below the transport's low-water mark after being above its high-water mark.
  virtual void on_drain(Connection& ws) { (void)ws; }
  // The connection is over: `code` is the peer's close code (1005 when its close frame had none), or the code we
  // failed the connection with (1002, 1007, 1009, 1011, the slow-consumer drop), or 1006 when it ended without a
  // close frame; `reason` likewise (valid during the call). `error` is the transport error, if any. Called exactly
  // once for each on_open.
  virtual void on_close(Connection& ws, std::uint16_t code, std::string_view reason, std::exception_ptr error) {
    (void)ws, (void)code, (void)reason, (void)error;
  }
};

// Server side: what the client asked for in its upgrade request (views valid during the call that receives it).
struct UpgradeRequest {
  std::string_view target{};  // "/chat?room=1"
  std::string_view host{};
  std::string_view origin{};      // empty when absent
  std::string_view key{};         // Sec-WebSocket-Key
  std::string_view protocols{};   // Sec-WebSocket-Protocol, as sent (comma-separated)
  std::string_view extensions{};  // Sec-WebSocket-Extensions, all of them joined with ", "
  std::string_view version{};     // Sec-WebSocket-Version
  // Every header of the request (cookies, authorization, ...), as name/value pairs.
  std::span<const std::pair<std::string_view, std::string_view>> headers{};
  std::string_view header(std::string_view name) const noexcept;  // case-insensitive; empty when absent
};

// Returns the handler for an accepted upgrade, or null to refuse it with 403.
using HandlerFactory = std::function<std::unique_ptr<Handler>(const UpgradeRequest&)>;

class Connection {
 public:
  virtual ~Connection() = default;

  // Sends a message. Returns false (sending nothing) when the connection is closing or closed. Never waits: output
  // beyond what the kernel takes is queued (see SlowConsumer). `data` is not kept after the call.
  virtual bool send(std::span<const std::byte> data, bool text) = 0;
  bool send_text(std::string_view text) { return send(std::as_bytes(std::span(text.data(), text.size())), true); }
  bool send_binary(std::span<const std::byte> data) { return send(data, false); }
  // Fan-out: the prepared frame, by reference.
  virtual bool send(const PreparedMessage& message) = 0;
  // Payload at most 125 bytes (std::invalid_argument beyond).
  virtual bool ping(std::span<const std::byte> payload = {}) = 0;
  virtual bool pong(std::span<const std::byte> payload = {}) = 0;
  // Starts the close handshake (idempotent). An invalid code throws std::invalid_argument; the reason is cut to
  // fit a control frame (123 bytes) on a code point boundary.
  virtual void close(std::uint16_t code = close_code::normal, std::string_view reason = {}) = 0;
  // Closes the TCP connection at once, without a close frame.
  virtual void abort() = 0;

  virtual bool is_open() const noexcept = 0;  // no close frame sent or received yet
  // Bytes of output not yet taken by the kernel (our queue and the transport's buffer).
  virtual std::size_t buffered_amount() const noexcept = 0;
  virtual std::string_view subprotocol() const noexcept = 0;
  // The negotiated permessage-deflate response ("permessage-deflate; ..."), empty when off.
  virtual std::string_view extensions() const noexcept = 0;
  // Bytes the connection's compression holds now: its kept windows, and a zlib stream while a message is being
  // inflated (0 without deflate, before the first compressed message, and with no_context_takeover both ways).
  virtual std::size_t compression_memory() const noexcept = 0;
  virtual Transport* transport() const noexcept = 0;
  virtual EventLoop& get_loop() const noexcept = 0;
};

// --- servers

// A standalone WebSocket server: every connection's first request must be an upgrade (426 otherwise).
Server serve(EventLoop& loop, HandlerFactory factory, std::string_view host, std::uint16_t port, Options options = {},
             ServerOptions server_options = {});
// The same over TLS (wss://).
Server serve(EventLoop& loop, HandlerFactory factory, std::string_view host, std::uint16_t port, const SslContext& ssl,
             Options options = {}, ServerOptions server_options = {});

// The protocol factory behind serve(): use it with create_server (or TLS's) to listen your own way.
ProtocolFactory server_protocol_factory(EventLoop& loop, HandlerFactory factory, Options options = {});

// Upgrades a connection an HTTP server has read an upgrade request on: validates the request, answers 101 (or the
// error: 400 malformed, 403 refused origin or factory, 426 wrong version; then `transport` is closed once that is
// sent), and makes the WebSocket connection the transport's protocol. `already_read` are bytes that came after the
// request head (the client's first frames), fed to the connection at once. The caller gives up `transport`'s
// protocol (set_protocol returns it to the caller, who must destroy it after its own method returned).
// Returns the previous protocol (null when the upgrade was refused).
std::unique_ptr<StreamProtocol> upgrade(Transport& transport, const UpgradeRequest& request,
                                        std::span<const std::byte> already_read, HandlerFactory factory,
                                        Options options = {});

// Upgrade from any route of the HTTP server (http/server.hpp): an Upgrader is a synchronous handler.
//   websocket::Upgrader chat(factory, options);
//   router.get("/chat", chat);   // or [&](http::Request& r) { return chat(r); } after checks of your own
// It answers with Response::take_over: once the server wrote what it owed on the connection, the upgrade runs as
// upgrade() above (a request that is not a valid WebSocket handshake gets its 400/403/426 and the connection is
// closed). The options are shared by every connection it upgrades.
class Upgrader {
 public:
  explicit Upgrader(HandlerFactory factory, Options options = {});
  http::Response operator()(http::Request& request) const;

 private:
  std::shared_ptr<const void> config_;  // a detail::SharedConfig
};

// --- the coroutine form

// The connection was closed: code and reason of the peer's close frame (1006: none came).
class ConnectionClosed : public std::runtime_error {
 public:
  ConnectionClosed(std::uint16_t code, std::string reason);
  std::uint16_t code() const noexcept { return code_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::uint16_t code_;
  std::string reason_;
};

// The handshake failed (bad status, missing or wrong Sec-WebSocket-Accept, refused extension or subprotocol).
class HandshakeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
class CoroState;
}

// A coroutine-facing connection: a handle (move-only) on the connection's state. The connection lives on while the
// transport does; dropping the last handle closes it (1001 going away) if it is still open.
// One task at a time may await receive(); several may await send().
class WebSocket {
 public:
  WebSocket() noexcept = default;
  explicit WebSocket(detail::CoroState* s) noexcept;
  WebSocket(WebSocket&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  WebSocket& operator=(WebSocket&& o) noexcept;
  ~WebSocket();

  class Receive;
  class Send;
  class Closed;

  // The next message (or fragment). Throws ConnectionClosed after the close handshake (or the connection's end),
  // once every message received before it was taken. Cancellable: a cancelled receive loses no message.
  Receive receive();
  // Sends, then waits while the output queued is above the transport's high-water mark (backpressure). Throws
  // ConnectionClosed when the connection is closing or closed. Cancellable (the message is sent nonetheless).
  Send send(std::string_view text);
  Send send(std::span<const std::byte> data, bool text = false);
  Send send(const PreparedMessage& message);
  // Starts the close handshake and waits for its end (the connection lost). Cancellable (stops the wait only).
  Closed close(std::uint16_t code = close_code::normal, std::string_view reason = {});
  // Waits for the connection's end without closing.
  Closed wait_closed();
  void ping(std::span<const std::byte> payload = {});

  // The underlying connection, while it exists (null after the connection ended).
  Connection* connection() const noexcept;
  std::string_view subprotocol() const noexcept;
  explicit operator bool() const noexcept { return s_ != nullptr; }
  // The peer's close code once closed (1006 without a close frame), 0 while open.
  std::uint16_t close_code() const noexcept;

  class Receive final : public Suspension {
   public:
    explicit Receive(detail::CoroState* s) noexcept : s_(s) {}
    Receive(Receive&& o) noexcept : Suspension(), s_(o.s_) {}
    ~Receive();
    bool await_ready();
    bool await_suspend(std::coroutine_handle<> h);
    Message await_resume();
    void describe(std::ostream& os) const override;
    using Suspension::wake;

   private:
    Cancel on_cancel() noexcept override;
    detail::CoroState* s_;
  };

  // send()'s and close()'s waits: until the output drained below the low-water mark (send), or until the
  // connection is lost (close, wait_closed).
  class Send final : public Suspension {
   public:
    Send(detail::CoroState* s, bool ok) noexcept : s_(s), ok_(ok) {}
    Send(Send&& o) noexcept : Suspension(), s_(o.s_), ok_(o.ok_) {}
    ~Send();
    bool await_ready();
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume();
    void describe(std::ostream& os) const override;
    using Suspension::wake;
    Send* next = nullptr;

   private:
    Cancel on_cancel() noexcept override;
    detail::CoroState* s_;
    bool ok_;
    bool linked_ = false;
  };

  class Closed final : public Suspension {
   public:
    explicit Closed(detail::CoroState* s) noexcept : s_(s) {}
    Closed(Closed&& o) noexcept : Suspension(), s_(o.s_) {}
    ~Closed();
    bool await_ready();
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume();
    void describe(std::ostream& os) const override;
    using Suspension::wake;
    Closed* next = nullptr;

   private:
    Cancel on_cancel() noexcept override;
    detail::CoroState* s_;
    bool linked_ = false;
  };

 private:
  detail::CoroState* s_ = nullptr;
};

struct ConnectOptions {
  Options options{};
  // wss:// uses this context; null: a default client context (system CAs, host name checked).
  const SslContext* ssl = nullptr;
  // Sent as Origin when not empty.
  std::string origin{};
};

// Connects to a ws:// or wss:// URL ("ws://host:port/path?query"; IPv6 hosts in brackets), completes the handshake
// and returns the connection. Errors: std::invalid_argument (bad URL), the connection's errors, HandshakeError.
// Cancellable at any stage (the connection is closed).
// Not coroutines themselves (they make the coroutine with copies of their arguments): g++ 12 destroys a class-type
// temporary of a co_await operand twice (docs/coroutines.md, "g++ 12"), so `co_await connect(url,
// ConnectOptions{...})` must not make one: pass an lvalue ConnectOptions, or none.
Coro<WebSocket> connect(std::string_view url);
Coro<WebSocket> connect(std::string_view url, const ConnectOptions& options);

// The coroutine form of a server: `handler` runs as a task per connection (after the handshake), with the
// request's target ("/chat?room=1"). `handler` is kept by the factory (a capturing lambda's closure lives as long as
// the server). Its exceptions are reported through the loop's exception handler; the connection is then closed.
using CoroHandler = std::function<Coro<void>(WebSocket ws, std::string target)>;
HandlerFactory coroutine_handler(EventLoop& loop, CoroHandler handler);

}  // namespace tulipa::websocket
