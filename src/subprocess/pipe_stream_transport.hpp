// PipeStreamTransport: lets a StreamReader or StreamWriter (streams.hpp) sit on one of a child's pipes, as
// asyncio's subprocess streams sit on its pipe transports.
//
// A stream's shared state (StreamReaderProtocol) is a protocol of a bidirectional Transport: it pauses and resumes
// reading for flow control, writes, closes. A pipe goes one way, so this adapter is a Transport that forwards
// each call to the pipe transport underneath (a ReadTransport for stdout/stderr, a WriteTransport for stdin); the
// other direction's calls are inert (reading calls on stdin) or refused with std::logic_error (write() on stdout).
//
// Data does not flow through it: the Process's SubprocessProtocol feeds the StreamReaderProtocol (pipe_data_received
// -> feed, pipe_connection_lost -> connection_lost), and this adapter only carries the stream's calls back down.
// Life: attach() when the child is spawned; detach() when its pipe is lost (the StreamReaderProtocol then gets
// connection_lost and the adapter's share of it is released). The adapter lives in the ProcessState, which
// outlives every pipe's loss (see process.cpp).
#pragma once

#include <cstddef>
#include <exception>
#include <memory>

#include "tulipa/transport.hpp"

namespace tulipa::detail {

class StreamReaderProtocol;

class PipeStreamTransport final : public Transport {
 public:
  PipeStreamTransport() noexcept = default;
  PipeStreamTransport(const PipeStreamTransport&) = delete;
  PipeStreamTransport& operator=(const PipeStreamTransport&) = delete;
  ~PipeStreamTransport();

  // Creates the stream state on `pipe` (one of `in`/`out` is null) and calls its connection_made.
  void attach(EventLoop& loop, ReadTransport* out, WriteTransport* in, std::size_t limit);
  // The pipe is lost: connection_lost(exc) to the stream, then our share of it goes.
  void detach(std::exception_ptr exc);
  StreamReaderProtocol* connection() const noexcept { return conn_; }

  // Transport
  void close() override;
  bool is_closing() const noexcept override;
  EventLoop& get_loop() const noexcept override { return *loop_; }
  SocketAddress peername() const override { return {}; }
  SocketAddress sockname() const override { return {}; }
  int fd() const noexcept override;
  void pause_reading() override;
  void resume_reading() override;
  bool is_reading() const noexcept override;
  void write(std::span<const std::byte> data) override;
  using Transport::write;
  void writelines(std::span<const std::span<const std::byte>> pieces) override;
  using Transport::writelines;
  std::size_t get_write_buffer_size() const noexcept override;
  void set_write_buffer_limits(std::size_t high, std::size_t low) override;
  WriteBufferLimits get_write_buffer_limits() const noexcept override;
  void write_eof() override;
  bool can_write_eof() const noexcept override { return in_ != nullptr; }
  void abort() override;
  StreamProtocol& get_protocol() const noexcept override;
  // A pipe's stream cannot change hands: std::logic_error.
  std::unique_ptr<StreamProtocol> set_protocol(std::unique_ptr<StreamProtocol> protocol) override;

 private:
  WriteTransport& writable(const char* what) const;

  EventLoop* loop_ = nullptr;
  ReadTransport* out_ = nullptr;          // the child's stdout/stderr pipe, until lost
  WriteTransport* in_ = nullptr;          // the child's stdin pipe, until lost
  StreamReaderProtocol* conn_ = nullptr;  // our (the transport's) share, until detach()
};

}  // namespace tulipa::detail
