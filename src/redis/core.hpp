// One Redis connection's machinery (shared by Client, leased Connections and Subscribers): connecting and the
// HELLO/AUTH/SELECT handshake, the write buffer flushed once per loop pass (automatic pipelining), the FIFO of
// callers awaiting replies, frame parsing in place, push routing, timeouts.
//
// The transport owns its protocol (RespProtocol below), which only forwards to the Core; the Core owns neither.
// When the Core closes a connection it detaches the protocol first, so the transport's later connection_lost
// finds no Core. States: idle (no connection) -> connecting (TCP/TLS connect, then the handshake's replies) ->
// ready; any failure goes back to idle with every caller failed. Commands queued while idle start a connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tulipa/handle.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/protocol.hpp"
#include "tulipa/redis/client.hpp"
#include "tulipa/redis/detail/command.hpp"
#include "tulipa/redis/resp.hpp"
#include "tulipa/transport.hpp"

namespace tulipa::redis::detail {

class RespProtocol;

// What a Subscriber hears of its connection.
class CoreListener {
 public:
  // A push frame that is not a (un)subscribe confirmation some command waits for. Valid during the call.
  virtual void on_push(const char* frame, std::size_t size) = 0;
  // The handshake finished on a new connection.
  virtual void on_ready() = 0;
  // The connection was lost, or connecting failed; `why` says which.
  virtual void on_down(const std::string& why) = 0;

 protected:
  ~CoreListener() = default;
};

class Core {
 public:
  enum class State : std::uint8_t { idle, connecting, ready, closed };

  Core(EventLoop& loop, std::shared_ptr<const Options> options, std::uint64_t* opened_counter = nullptr);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  std::uint64_t submit(ReplySink* sink, std::span<const Arg> args, SubmitOptions options) noexcept;
  void forget(std::uint64_t seq) noexcept;

  // Starts connecting when idle.
  void connect();
  // Closes the connection (if any); every caller fails with ConnectionError(why). The Core stays usable (a later
  // command reconnects) unless `final`: then every later command fails at once.
  void close(const std::string& why, bool final = false) noexcept;

  State state() const noexcept { return state_; }
  bool in_flight() const noexcept { return head_ != tail_; }
  void set_listener(CoreListener* l) noexcept { listener_ = l; }
  EventLoop& loop() const noexcept { return loop_; }
  const Options& options() const noexcept { return *options_; }
  // Exclusive connections: tracks what the commands sent leave behind (MULTI, WATCH, SELECT, ...), so that the pool
  // takes back only clean connections.
  void set_track_state(bool on) noexcept { track_ = on; }
  bool clean() const noexcept {
    return state_ == State::ready && head_ == tail_ && !dirty_ && !in_multi_ && !watching_;
  }
  // Reading pauses while the listener cannot take more (subscriber flow control).
  void pause_reading() noexcept;
  void resume_reading() noexcept;

  // --- from RespProtocol
  void on_made(RespProtocol* p, Transport& t);
  void on_data(std::span<const std::byte> data);
  void on_lost(std::exception_ptr e);
  void on_protocol_gone(RespProtocol* p) noexcept;

 private:
  struct Slot {
    ReplySink* sink;       // null: the caller went away, drop the reply
    std::uint32_t pushes;  // > 0: answered by that many (un)subscribe push frames
    TimePoint deadline;
  };
  std::string where() const;
  void start_connect();
  void on_connect_done(Transport* t, std::exception_ptr e);
  int build_handshake(std::string& out) const;
  void handshake_done();
  void schedule_flush();
  void flush();
  void parse(const char* data, std::size_t size, bool own);
  void dispatch(const char* frame, std::size_t size);
  void route_push(const char* frame, std::size_t size);
  void complete_head(RespReader* frame, std::exception_ptr error);
  void fail_all(const std::exception_ptr& e) noexcept;
  friend class RespProtocol;
  void drop_connection(const std::exception_ptr& e, const std::string& why) noexcept;
  void arm_watchdog(TimePoint when);
  void on_watchdog();
  void on_connect_timeout();
  void track(std::span<const Arg> args) noexcept;
  Slot& slot(std::uint64_t seq) noexcept { return ring_[seq & (ring_.size() - 1)]; }

  EventLoop& loop_;
  std::shared_ptr<const Options> options_;
  std::uint64_t* opened_counter_;
  CoreListener* listener_ = nullptr;
  State state_ = State::idle;
  bool flush_scheduled_ = false;
  bool reading_paused_ = false;
  bool track_ = false, dirty_ = false, in_multi_ = false, watching_ = false;
  bool watchdog_armed_ = false;
  Transport* transport_ = nullptr;
  RespProtocol* protocol_ = nullptr;
  ConnectHandle connecting_;
  TimerHandle connect_timer_;
  TimerHandle watchdog_;
  Handle flush_handle_;
  int handshake_left_ = 0;  // the handshake's replies come before every slot's
  std::string out_;         // commands not yet written
  std::vector<Slot> ring_;  // the FIFO, a power-of-two ring indexed by sequence numbers
  std::uint64_t head_ = 0, tail_ = 0;
  std::string in_;  // a frame that arrived in part (else empty: frames are parsed where they lie)
  RespScanner scanner_;
  std::uint64_t generation_ = 0;  // bumped when the connection goes: stops a parse loop in its tracks
};

}  // namespace tulipa::redis::detail
