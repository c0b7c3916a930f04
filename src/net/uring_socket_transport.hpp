// UringSocketTransport: the stream transport of a loop on io_uring, built on operations instead of readiness
// (asyncio's _ProactorSocketTransport beside _SelectorSocketTransport). The loop's backend chooses it
// (make_stream_transport in net/stream_transport.hpp); the readiness transport (socket_transport.hpp) stays the
// epoll and poll backends' and is untouched by it.
//
// Reading: one multishot receive per connection (IORING_RECV_MULTISHOT) into the loop's provided buffers
// (selectors/uring_ops.hpp), so an idle connection holds no buffer. Each completion's bytes are handed to the
// protocol and the buffer given back at once: a plain Protocol's data_received sees the provided buffer itself; a
// BufferedProtocol's get_buffer/buffer_updated get a copy (as many rounds as its spans need). The receive is armed
// again whenever a completion lacks IORING_CQE_F_MORE (ENOBUFS: the buffers were all in use; the kernel ended it)
// unless reading is paused or over. pause_reading cancels it; what still arrives before the cancellation is copied
// out and held (the provided buffers are the whole loop's) and delivered after resume_reading, as its own loop
// callback.
// Writing: a write of at least 4 KiB with nothing queued goes out at once with send(2) (no copy); anything else is
// copied into the WriteQueue (pooled chunks) and, when no send is in flight, leaves as one send (one piece) or
// sendmsg (up to 16) operation, submitted with the loop pass's io_uring_enter; one send is in flight per socket, the
// rest waits in the queue and leaves with the next one. Flow control (pause_writing above the high-water mark) is
// the readiness transport's.
// Ending: connection_lost runs as its own loop callback as always; then the operations still in flight are
// cancelled and the transport (with its queue, whose memory a send may still read) lives until their final
// completions arrived (the fd is closed when connection_lost ran; the kernel keeps the file until they end).
#pragma once

#include <cstdint>
#include <exception>
#include <memory>

#include "net/write_queue.hpp"
#include "selectors/uring_ops.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/transport.hpp"

namespace tulipa::detail {

struct ServerCore;

class UringSocketTransport final : public Transport, public IoWatcher, public UringTarget {
 public:
  // Takes ownership of the connected non-blocking socket `fd` and of `protocol` (not null). `server` (may be null)
  // is told when the connection ends.
  static UringSocketTransport* create(EventLoop& loop, UringOps& ops, int fd, std::unique_ptr<StreamProtocol> protocol,
                                      ServerCore* server);
  void start();

  // Transport
  void close() override;
  bool is_closing() const noexcept override { return closing_; }
  EventLoop& get_loop() const noexcept override { return *loop_; }
  SocketAddress peername() const override;
  SocketAddress sockname() const override;
  int fd() const noexcept override { return fd_; }
  void pause_reading() override;
  void resume_reading() override;
  bool is_reading() const noexcept override { return reading_ && !closing_; }
  void write(std::span<const std::byte> data) override;
  using Transport::write;
  void writelines(std::span<const std::span<const std::byte>> pieces) override;
  using Transport::writelines;
  std::size_t get_write_buffer_size() const noexcept override { return queue_.size(); }
  void set_write_buffer_limits(std::size_t high, std::size_t low) override;
  WriteBufferLimits get_write_buffer_limits() const noexcept override { return {high_, low_}; }
  void write_eof() override;
  bool can_write_eof() const noexcept override { return true; }
  void abort() override;
  StreamProtocol& get_protocol() const noexcept override { return *protocol_; }
  std::unique_ptr<StreamProtocol> set_protocol(std::unique_ptr<StreamProtocol> protocol) override;

  // IoWatcher: the fd is known to the loop (never polled) so that the loop's close() ends the connection.
  void on_io(Events) override {}
  void on_loop_close() noexcept override;
  // UringTarget
  void on_completion(unsigned op, int res, unsigned flags, bool teardown) noexcept override;

  // The server's list of its connections.
  UringSocketTransport* server_prev = nullptr;
  UringSocketTransport* server_next = nullptr;

  static void* operator new(std::size_t size);
  static void operator delete(void* p) noexcept;

 private:
  enum Op : unsigned { op_recv = 0, op_send = 1 };
  struct Held;  // bytes received while reading was paused
  struct FlushCall;

  UringSocketTransport(EventLoop& loop, UringOps& ops, int fd, std::unique_ptr<StreamProtocol> protocol,
                       ServerCore* server) noexcept;
  ~UringSocketTransport();

  void arm_recv();
  void stop_recv();
  void maybe_rearm();
  void received(int res, unsigned flags);
  std::size_t deliver(std::span<const std::byte> data);
  void hold(std::span<const std::byte> data);
  void flush_held();
  void release_held() noexcept;
  void submit_send();
  void sent(int res);
  void eof_from_peer();
  void after_drain();
  void maybe_pause_protocol();
  void maybe_resume_protocol();
  void os_error(int err, const char* op);
  void protocol_error(const char* what, std::exception_ptr exc);
  void force_close(std::exception_ptr exc);
  void schedule_connection_lost(std::exception_ptr exc);
  void call_connection_lost(std::exception_ptr exc);
  template <class>
  friend class LostCall;  // net/lost_call.hpp
  template <class>
  friend struct WriteFlow;  // net/write_flow.hpp
  void maybe_free() noexcept;

  EventLoop* loop_;
  UringOps* ops_;
  StreamProtocol* protocol_;  // owned; null once connection_lost ran
  ServerCore* server_;
  WriteQueue queue_;
  Held* held_ = nullptr;  // null unless bytes wait for resume_reading
  std::uint32_t high_ = 64 * 1024;
  std::uint32_t low_ = 16 * 1024;
  int fd_;
  std::uint8_t lost_writes_ = 0;
  bool started_ : 1 = false;
  bool reading_ : 1 = true;
  bool peer_eof_ : 1 = false;
  bool closing_ : 1 = false;
  bool eof_pending_ : 1 = false;
  bool eof_sent_ : 1 = false;
  bool protocol_paused_ : 1 = false;
  bool lost_ : 1 = false;           // connection_lost is scheduled (or ran)
  bool dead_ : 1 = false;           // connection_lost ran: freed once no operation is in flight
  bool recv_armed_ : 1 = false;     // a multishot receive is in flight
  bool sending_ : 1 = false;        // a sendmsg is in flight
  bool flush_pending_ : 1 = false;  // a FlushCall is scheduled
};

}  // namespace tulipa::detail
