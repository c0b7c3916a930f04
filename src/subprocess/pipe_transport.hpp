// The transports over our ends of a child's stdio pipes (asyncio's _UnixReadPipeTransport and
// _UnixWritePipeTransport). They feed a PipeOwner (the subprocess transport) rather than a stream protocol: the
// owner passes the data on to its SubprocessProtocol with the child's fd number.
//
// Life: created with our (non-blocking) end of the pipe -> start() -> ... -> EOF / error / close() -> the fd is
// unwatched -> owner.pipe_lost runs as a loop callback, the fd is closed. The objects themselves belong to the owner
// and live as long as it does, so a pointer the user got from get_pipe_transport never dangles before the
// subprocess transport's connection_lost. The loop's close() ends a pipe too, as it ends a socket transport: an open
// one through on_loop_close() (aborted: what stdin still buffered is dropped), one whose pipe_lost callback was
// pending when that callback is dropped (a LostCall, net/lost_call.hpp, which runs it all the same).
//
// On a loop with io_uring operations (selectors/uring_ops.hpp) the read pipes are read through the ring instead of
// polled: one read in flight into the loop's provided buffers (IOSQE_BUFFER_SELECT), armed again after each chunk
// was handed to the owner. The read's target is a small object of its own (PipeRead, pipe_transport.cpp), not the
// pipe: a pipe that ends (EOF, close, error, the owner's end) lets go of it and cancels the read, and it frees itself
// at the read's final completion, so the owner may destroy its pipes on its own schedule. Buffer lifetimes: a
// provided buffer named by a completion is the pipe's until the owner's pipe_data returned (then given back), or, when
// the completion arrives while reading is paused, until resume_reading delivers it (a no-op operation completes in the
// next pass and hands it over, so it still arrives as I/O, not inside resume_reading). The fd is closed through the
// ring (UringOps::close_fd) once no queued submission can name it.
// The stdin pipe writes through the ring the same way: one writev in flight (up to 16 queued pieces) from the write
// queue, whose target (PipeWrite) is an object of its own too. A pipe that ends with a write in flight hands it its
// queue (the chunks the kernel may still read), which it frees at the write's completion. While idle the pipe is
// still polled for `read` (a pipe's write end never reads, but the reader's going away shows there as POLLERR: that
// is how a child that exits without reading is noticed); while a write is in flight it is not polled at all.
#pragma once

#include <cstdint>
#include <exception>
#include <span>

#include "net/write_queue.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/transport.hpp"

namespace tulipa::detail {

class UringOps;
struct PipeRead;
struct PipeWrite;

class PipeOwner {
 public:
  // From the poll phase; `data` valid during the call. May close any pipe or the owner itself.
  virtual void pipe_data(int child_fd, std::span<const std::byte> data) = 0;
  // From a loop callback (or from the loop's close(), see above), once per pipe, after the pipe's fd was closed.
  virtual void pipe_lost(int child_fd, std::exception_ptr exc) = 0;
  // The stdin pipe's buffer crossed its high / low water mark.
  virtual void pipe_pause_writing() = 0;
  virtual void pipe_resume_writing() = 0;

 protected:
  ~PipeOwner() = default;
};

// Shared by both directions: the fd, the owner, the closing/lost state and connection_lost's scheduling.
// Not a BaseTransport itself (ReadTransport and WriteTransport derive from BaseTransport non-virtually, to keep a
// socket's Transport at one vtable pointer: transport.hpp); PipeTransport below adds BaseTransport's methods.
class PipeBase : public IoWatcher {
 public:
  int child_fd() const noexcept { return child_fd_; }
  bool lost() const noexcept { return lost_; }

 protected:
  PipeBase(EventLoop& loop, int fd, int child_fd, PipeOwner& owner) noexcept
      : loop_(&loop), owner_(&owner), fd_(fd), child_fd_(child_fd) {}
  ~PipeBase();
  // Unwatches the fd now; closes it and tells the owner from a loop callback. Once only.
  void lose(std::exception_ptr exc);
  // lose()'s callback (a LostCall): closes the fd, tells the owner.
  void call_connection_lost(std::exception_ptr exc);
  template <class>
  friend class LostCall;

  EventLoop* loop_;
  PipeOwner* owner_;
  UringOps* ops_ = nullptr;  // io_uring: the fd is closed through the ring (a read pipe's only)
  int fd_;
  int child_fd_;
  bool closing_ = false;  // close()/write_eof()/abort() was called
  bool lost_ = false;     // lose() ran: no more I/O
};

// BaseTransport's methods over PipeBase's state, for Interface = ReadTransport or WriteTransport.
template <class Interface>
class PipeTransport : public Interface, public PipeBase {
 public:
  bool is_closing() const noexcept override { return closing_ || lost_; }
  EventLoop& get_loop() const noexcept override { return *loop_; }
  SocketAddress peername() const override { return {}; }
  SocketAddress sockname() const override { return {}; }
  int fd() const noexcept override { return lost_ ? -1 : fd_; }

 protected:
  using PipeBase::PipeBase;
  ~PipeTransport() = default;
};

class ReadPipeTransport final : public PipeTransport<ReadTransport> {
 public:
  ReadPipeTransport(EventLoop& loop, int fd, int child_fd, PipeOwner& owner) noexcept
      : PipeTransport(loop, fd, child_fd, owner) {}
  ~ReadPipeTransport();
  void start();

  void close() override;
  void pause_reading() override;
  void resume_reading() override;
  bool is_reading() const noexcept override { return reading_ && !is_closing(); }
  void on_io(Events ready) override;
  void on_loop_close() noexcept override { close(); }

 private:
  friend struct PipeRead;
  // io_uring: a read's (or the held chunk's hand-over's) completion, while the pipe still has its PipeRead.
  void read_completed(int res, std::span<const std::byte> data);
  void let_go_of_read() noexcept;
  void end(std::exception_ptr exc);  // lose(), letting go of the read first
  void lose_on_error(int err);

  PipeRead* read_ = nullptr;  // io_uring: the operations' target (null: readiness, or let go)
  bool reading_ = true;
};

class WritePipeTransport final : public PipeTransport<WriteTransport> {
 public:
  WritePipeTransport(EventLoop& loop, int fd, int child_fd, PipeOwner& owner) noexcept
      : PipeTransport(loop, fd, child_fd, owner) {}
  void start();

  // close() and write_eof() are the same for a pipe: flush, then close our end (the child reads EOF).
  void close() override;
  void write(std::span<const std::byte> data) override;
  using WriteTransport::write;
  void writelines(std::span<const std::span<const std::byte>> pieces) override;
  using WriteTransport::writelines;
  std::size_t get_write_buffer_size() const noexcept override { return queue_.size(); }
  void set_write_buffer_limits(std::size_t high, std::size_t low) override;
  WriteBufferLimits get_write_buffer_limits() const noexcept override { return {high_, low_}; }
  void write_eof() override { close(); }
  bool can_write_eof() const noexcept override { return true; }
  void abort() override;
  // Watched for `read` while idle: a pipe's write end never reads, but epoll reports the reader's going away
  // (EPOLLERR) on it, which is how a child that exits without reading is noticed. `write` is added while data waits.
  void on_io(Events ready) override;
  void on_loop_close() noexcept override { abort(); }
  ~WritePipeTransport();

 private:
  friend struct PipeWrite;
  bool check_writable();  // throws after close(); false (drop the data) once the pipe broke
  void flush();
  void after_write();
  void fail(int err);
  // io_uring
  void submit_write();
  void written(int res);  // a write's completion, while the pipe still has its PipeWrite
  void let_go_of_write() noexcept;
  void end(std::exception_ptr exc);  // lose(), letting go of the write first

  PipeWrite* write_ = nullptr;  // io_uring: the writes' target (null: readiness, or let go)

  WriteQueue queue_;
  std::size_t high_ = 64 * 1024;
  std::size_t low_ = 16 * 1024;
  bool watching_write_ = false;
  bool paused_ = false;  // pause_writing was sent
};

}  // namespace tulipa::detail
