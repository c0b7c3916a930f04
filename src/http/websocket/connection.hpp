// The WebSocket connection: the transport's protocol (the handshake first, then frames) and the Connection the
// handler sees. Private to the component.
//
// Receiving: frames are parsed straight from the loop's shared read buffer; a data frame's payload is unmasked into
// the message buffer, a pooled chunk (bytes.hpp) that the delivered Message then owns (no copy, no heap allocation
// in steady state); compressed payloads are unmasked into a per-thread scratch buffer and inflated into it. An idle
// connection holds no message buffer.
//
// Sending: the frame header is built on the stack and written with the payload in one writelines (server frames are
// not masked, so the payload is written from the caller's memory; a client masks into a per-thread scratch buffer).
// While the transport is paused (its buffer above the high-water mark), frames join this connection's queue instead:
// a PreparedMessage by reference, anything else as a pooled copy; the queue goes to the transport when it resumes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "handshake.hpp"
#include "tulipa/bytes.hpp"
#include "tulipa/handle.hpp"
#include "tulipa/http/websocket.hpp"
#include "tulipa/http/websocket_utf8.hpp"

namespace tulipa::websocket::detail {

class Compressor;
class Decompressor;

enum class Role : std::uint8_t { server, client };

// What every connection of a server (or one client connection) shares.
struct SharedConfig {
  Options options;
  HandlerFactory factory;  // server only
};

// What a server decided about an upgrade request.
struct AcceptResult {
  int status = 101;
  std::string response;  // the whole response head (and body for errors)
  std::unique_ptr<Handler> handler;
  std::optional<DeflateParams> deflate;
  std::string subprotocol;
  std::string extensions;
};
AcceptResult server_accept(const UpgradeRequest& request, const SharedConfig& config);
// Parses a request head (without its final CRLF CRLF) into an UpgradeRequest and decides; `extensions` and
// `headers` keep what the UpgradeRequest's views point to.
AcceptResult server_accept_head(std::string_view head, const SharedConfig& config);

struct ClientHandshake;

class WsConnection final : public Protocol, public Connection {
 public:
  // A server connection that reads its upgrade request first (the standalone server).
  WsConnection(EventLoop& loop, std::shared_ptr<const SharedConfig> config);
  // A client connection: sends the request on connection_made, then reads the response. `done` is called once
  // with null (open: the handler got on_open) or the error (the connection is then closed).
  WsConnection(EventLoop& loop, std::shared_ptr<const SharedConfig> config, std::unique_ptr<Handler> handler,
               std::string host, std::string target, std::string origin, std::function<void(std::exception_ptr)> done);
  ~WsConnection() override;

  // Server: open on a transport whose request was already accepted (upgrade()).
  void open_upgraded(Transport& transport, AcceptResult&& accepted, std::span<const std::byte> already_read);

  // Protocol
  void connection_made(Transport& transport) override;
  void data_received(std::span<const std::byte> data) override;
  bool eof_received() override;
  void connection_lost(std::exception_ptr exc) override;
  void pause_writing() override;
  void resume_writing() override;

  // Connection
  bool send(std::span<const std::byte> data, bool text) override;
  bool send(const PreparedMessage& message) override;
  bool ping(std::span<const std::byte> payload) override;
  bool pong(std::span<const std::byte> payload) override;
  void close(std::uint16_t code, std::string_view reason) override;
  void abort() override;
  bool is_open() const noexcept override { return state_ == State::open; }
  std::size_t buffered_amount() const noexcept override;
  std::string_view subprotocol() const noexcept override { return rare_ ? rare_->subprotocol : std::string_view(); }
  std::string_view extensions() const noexcept override { return rare_ ? rare_->extensions : std::string_view(); }
  std::size_t compression_memory() const noexcept override;
  Transport* transport() const noexcept override { return transport_; }
  EventLoop& get_loop() const noexcept override { return *loop_; }

  bool paused() const noexcept { return paused_ || out_head_; }

 private:
  enum class State : std::uint8_t { handshake, open, closing, closed };
  struct OutNode;

  void open(std::unique_ptr<Handler> handler, std::optional<DeflateParams> deflate, std::string subprotocol,
            std::string extensions, std::span<const std::byte> already_read);
  void handshake_data(std::span<const std::byte> data);
  void frames(std::span<const std::byte> data);
  bool begin_frame();
  bool frame_payload(const std::byte* p, std::size_t n);
  bool end_frame();
  bool control_frame();
  bool deliver(bool fin);
  void ensure_capacity(std::size_t cap);
  bool fail(std::uint16_t code, std::string_view reason);

  void send_frame(Opcode op, bool fin, bool rsv1, std::span<const std::byte> payload);
  void send_close_frame(std::uint16_t code, std::string_view reason);
  void emit(std::span<const std::span<const std::byte>> pieces);
  void enqueue(std::span<const std::span<const std::byte>> pieces, std::shared_ptr<PreparedMessage::Shared> ref);
  void flush_queue();
  void clear_queue() noexcept;
  void check_slow_consumer();
  void schedule_ping();
  void on_timer();
  void arm_close_timer();
  void release_control() noexcept;

  EventLoop* loop_;
  Transport* transport_ = nullptr;
  std::shared_ptr<const SharedConfig> config_;
  std::unique_ptr<Handler> handler_;
  std::unique_ptr<ClientHandshake> client_;  // client, during the handshake
  std::unique_ptr<Compressor> compressor_;
  std::unique_ptr<Decompressor> decompressor_;
  // What most connections never hold, in a block made when one is set (a browser's idle connection has none: 120
  // bytes less than four strings in the object).
  struct Rare {
    std::string hs_buf;  // a handshake head split across reads, gathered (one read whole is parsed in place)
    std::string subprotocol;
    std::string extensions;
    std::string close_reason;
  };
  std::unique_ptr<Rare> rare_;
  Rare& rare() {
    if (!rare_) rare_ = std::make_unique<Rare>();
    return *rare_;
  }
  void set_close_reason(std::string_view reason) {
    if (rare_ || !reason.empty()) rare().close_reason = std::string(reason);
  }
  TimerHandle timer_;
  OutNode* out_head_ = nullptr;
  OutNode* out_tail_ = nullptr;
  std::size_t out_bytes_ = 0;

  // The frame being received.
  std::uint64_t remaining_ = 0;  // payload bytes still to come
  std::uint64_t frame_off_ = 0;  // payload bytes of this frame seen (the masking offset)
  std::uint64_t msg_size_ = 0;   // bytes of the current message so far (inflated)
  tulipa::detail::Chunk buf_{};  // the data message being assembled
  std::size_t buf_size_ = 0;
  Utf8Validator utf8_;
  std::uint8_t mask_[4] = {};
  std::uint8_t hdr_[max_frame_header];
  std::uint8_t hdr_len_ = 0;
  std::uint8_t ctrl_len_ = 0;
  // A control frame's payload: a chunk of the thread's pool taken when a control frame with a payload begins and
  // given back once it was handled, so that an idle connection holds none (125 bytes in the object before).
  tulipa::detail::Chunk ctrl_{};
  Opcode op_ = Opcode::binary;  // this frame's
  Role role_;
  State state_ = State::handshake;
  bool in_payload_ = false;
  bool fin_ = false;
  bool masked_ = false;
  bool msg_active_ = false;  // a fragmented message is in progress
  bool msg_text_ = false;
  bool msg_compressed_ = false;
  bool paused_ = false;  // the transport asked us to stop writing
  bool close_sent_ = false;
  bool close_received_ = false;
  bool awaiting_pong_ = false;
  bool deflate_ = false;
  bool lost_ = false;
  std::uint8_t compress_bits_ = 15;
  std::uint16_t close_code_ = close_code::abnormal;
};

}  // namespace tulipa::websocket::detail
