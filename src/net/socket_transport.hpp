// SocketTransport: the stream transport over a connected, non-blocking socket (TCP or Unix), driven by the loop's
// IoWatcher interface. asyncio's _SelectorSocketTransport.
//
// Memory: this object is the whole per-connection state (plus the protocol the user chose and the loop's per-fd
// entry). It is pool-allocated (no malloc header), holds no read buffer (plain Protocols read into the thread's
// shared buffer) and owns write memory only while the kernel is behind.
//
// Life: create() -> start() (connection_made, then reading) -> ... -> close()/abort()/error/EOF -> the fd is
// unwatched -> connection_lost runs as a loop callback -> the fd is closed, the protocol and this are destroyed.
// The loop's close() ends a transport too: an open one through on_loop_close(), one whose connection_lost callback
// was still pending when that callback is dropped (the callback owns the transport), so none outlives its loop.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>

#include "net/write_queue.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/transport.hpp"

namespace tulipa::detail {

struct ServerCore;

class SocketTransport final : public Transport, public IoWatcher {
 public:
  // Takes ownership of the connected non-blocking socket `fd` and of `protocol` (not null). `server` (may be
  // null) is told when the connection ends.
  static SocketTransport* create(EventLoop& loop, int fd, std::unique_ptr<StreamProtocol> protocol, ServerCore* server);
  // Calls connection_made, then starts reading (unless the protocol paused reading or closed meanwhile).
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

  // IoWatcher
  void on_io(Events ready) override;
  // The loop closes while the connection is open: it is aborted and ends at once (connection_lost, then freed).
  void on_loop_close() noexcept override;

  // The server's list of its connections (intrusive, so tracking costs no allocation).
  SocketTransport* server_prev = nullptr;
  SocketTransport* server_next = nullptr;

  static void* operator new(std::size_t size);
  static void operator delete(void* p) noexcept;

 private:
  SocketTransport(EventLoop& loop, int fd, std::unique_ptr<StreamProtocol> protocol, ServerCore* server) noexcept;
  ~SocketTransport();

  void read_ready();
  void read_buffered();
  void write_ready();
  void eof_from_peer();
  void update_interest();
  void after_drain();
  void maybe_pause_protocol();
  void maybe_resume_protocol();
  // An OS error ends the connection: connection_lost(exc), not reported to the exception handler.
  void os_error(int err, const char* op);
  // A protocol method threw: reported to the loop's exception handler, then the connection is aborted.
  void protocol_error(const char* what, std::exception_ptr exc);
  void force_close(std::exception_ptr exc);
  void schedule_connection_lost(std::exception_ptr exc);
  // Ends the connection: connection_lost, the fd closed, this freed. Run by schedule_connection_lost's LostCall
  // (net/lost_call.hpp), which also runs it when the loop closes and drops the callback unrun.
  void call_connection_lost(std::exception_ptr exc);
  template <class>
  friend class LostCall;
  template <class>
  friend struct WriteFlow;
  Events watched() const noexcept { return static_cast<Events>(watched_); }
  void set_watched(Events e) noexcept { watched_ = static_cast<std::uint8_t>(e); }

  EventLoop* loop_;
  StreamProtocol* protocol_;  // owned
  ServerCore* server_;
  WriteQueue queue_;
  std::uint32_t high_ = 64 * 1024;
  std::uint32_t low_ = 16 * 1024;
  int fd_;
  // What the loop polls for now (an Events, kept in a byte: Events is 32 bits wide and would cost 8 bytes here).
  std::uint8_t watched_ = 0;
  std::uint8_t lost_writes_ = 0;  // writes dropped since the connection was lost (net/lost_writes.hpp)
  bool started_ : 1 = false;      // watch() was called
  bool reading_ : 1 = true;       // not paused by pause_reading()
  bool peer_eof_ : 1 = false;     // read side finished
  bool closing_ : 1 = false;      // close()/abort()/error: no more reads, no new writes after the flush
  bool eof_pending_ : 1 = false;  // write_eof(): shutdown once the queue drained
  bool eof_sent_ : 1 = false;
  bool protocol_paused_ : 1 = false;
  bool lost_ : 1 = false;  // connection_lost is scheduled; the fd is unwatched
};

// The per-connection budget (issue 5: bytes per idle connection). Two vtable pointers (Transport, IoWatcher: the
// Transport hierarchy has no virtual bases, see transport.hpp), loop, protocol, server and its list links, a
// one-pointer write queue, the limits, fd and flags: 80 bytes, which the pool (16-byte blocks) does not round up.
// Growing past it costs 16 bytes on every connection: find the bytes elsewhere first.
static_assert(sizeof(SocketTransport) <= 80, "SocketTransport outgrew its per-connection budget");

}  // namespace tulipa::detail
