#include "subprocess/pipe_transport.hpp"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "net/lost_call.hpp"
#include "net/read_buffer.hpp"
#include "selectors/uring_ops.hpp"
#include "subprocess/spawn.hpp"

#if TULIPA_HAVE_URING
#include <liburing.h>
#endif

namespace tulipa::detail {

// --------------------------------------------------------------------------- PipeBase

PipeBase::~PipeBase() {
  if (fd_ >= 0) {
    if (!lost_) loop_->unwatch(fd_);
    if (ops_) {
      ops_->close_fd(fd_);
    } else {
      ::close(fd_);
    }
  }
}

void PipeBase::lose(std::exception_ptr exc) {
  if (lost_) return;
  lost_ = true;
  loop_->unwatch(fd_);
  loop_->call_soon(LostCall<PipeBase>(this, std::move(exc)));
}

void PipeBase::call_connection_lost(std::exception_ptr exc) {
  if (ops_) {
    ops_->close_fd(fd_);
  } else {
    ::close(fd_);
  }
  fd_ = -1;
  owner_->pipe_lost(child_fd_, std::move(exc));
}

// --------------------------------------------------------------------------- ReadPipeTransport

// --- io_uring: the read in flight, and a chunk held while reading is paused

#if TULIPA_HAVE_URING
struct PipeRead final : UringTarget {
  enum Op : unsigned { op_read = 0, op_hand_over = 1 };
  UringOps* ops;
  ReadPipeTransport* pipe;  // null once the pipe let go: then freed at the final completion
  int fd;
  int held_id = -1;  // a provided buffer that arrived while reading was paused
  std::uint32_t held_len = 0;
  unsigned held_flags = 0;  // its completion's (UringOps::release)
  std::byte* held_data = nullptr;
  bool held_eof = false;    // EOF arrived while reading was paused
  bool in_flight = false;   // a read or a hand-over
  bool delivering = false;  // inside on_completion: letting go must not free it

  PipeRead(UringOps& o, ReadPipeTransport& p, int f) noexcept : ops(&o), pipe(&p), fd(f) {}

  void arm() {
    io_uring_sqe* s = ops->prepare(this, op_read);
    io_uring_prep_read(s, fd, nullptr, unsigned(ops->buffer_bytes()), 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = UringOps::buffer_group;
    in_flight = true;
  }
  // What was held goes to the pipe as the completion of a no-op in the next pass.
  void hand_over() {
    io_uring_sqe* s = ops->prepare(this, op_hand_over);
    io_uring_prep_nop(s);
    in_flight = true;
  }
  void let_go() noexcept {
    pipe = nullptr;
    if (std::exchange(held_id, -1) >= 0) ops->release(held_flags);
    if (in_flight) {
      try {
        ops->cancel(this, op_read);
      } catch (...) {
        // No SQE to be had: the read ends with the pipe's EOF, or at the ring's teardown.
      }
    } else if (!delivering) {
      delete this;
    }
  }

  void on_completion(unsigned op, int res, unsigned flags, bool teardown) noexcept override {
    in_flight = false;
    const bool has_buffer = op == op_read && res > 0 && (flags & IORING_CQE_F_BUFFER);
    const unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
    if (pipe == nullptr || teardown) {
      if (has_buffer) {
        ops->received(res, flags);
        ops->release(flags);
      }
      if (pipe == nullptr && !in_flight) delete this;
      return;
    }
    delivering = true;
    if (op == op_hand_over) {
      deliver_held();
    } else if (!pipe->reading_ && (res >= 0)) {
      if (has_buffer) {  // hold it until resume_reading (one read in flight: one chunk at most)
        held_id = int(id);
        held_len = std::uint32_t(res);
        held_flags = flags;
        held_data = ops->received(res, flags).data();
      } else {
        held_eof = true;
      }
    } else if (has_buffer) {
      pipe->read_completed(res, ops->received(res, flags));
      ops->release(flags);
    } else {
      if (res == -ENOBUFS) ops->count_shortage();
      pipe->read_completed(res, {});
    }
    delivering = false;
    if (pipe == nullptr && !in_flight) delete this;
  }

  void deliver_held() noexcept {
    if (!pipe->reading_) return;  // paused again since: held on
    if (held_id >= 0) {
      held_id = -1;
      pipe->read_completed(int(held_len), std::span<std::byte>(held_data, held_len));
      ops->release(held_flags);
    }
    if (pipe != nullptr && std::exchange(held_eof, false)) {
      pipe->read_completed(0, {});
    } else if (pipe != nullptr) {
      pipe->read_completed(-EAGAIN, {});  // nothing more: read on
    }
  }
};
#else
struct PipeRead final : UringTarget {  // never made: uring_ops() is null in this build
  PipeRead(UringOps&, ReadPipeTransport&, int) noexcept {}
  void on_completion(unsigned, int, unsigned, bool) noexcept override {}
  void let_go() noexcept {}
  void arm() {}
  void hand_over() {}
  int held_id = -1;
  bool held_eof = false;
  bool in_flight = false;
};
#endif

#if TULIPA_HAVE_URING
struct PipeWrite final : UringTarget {
  UringOps* ops;
  WritePipeTransport* pipe;  // null once the pipe let go: then freed at the write's completion
  bool in_flight = false;
  bool delivering = false;
  WriteQueue orphaned;  // the pipe's queue, handed over when it let go with a write in flight

  PipeWrite(UringOps& o, WritePipeTransport& p) noexcept : ops(&o), pipe(&p) {}

  void let_go(WriteQueue& queue) noexcept {
    pipe = nullptr;
    if (!in_flight) {
      queue.clear();
      if (!delivering) delete this;
      return;
    }
    orphaned.take(queue);  // the kernel may still read these chunks
    try {
      ops->cancel(this, 0);
    } catch (...) {
      // No SQE to be had: the write completes when the child reads, exits, or at the ring's teardown.
    }
  }

  void on_completion(unsigned, int res, unsigned, bool teardown) noexcept override {
    in_flight = false;
    if (pipe != nullptr && !teardown) {
      delivering = true;
      pipe->written(res);
      delivering = false;
    }
    if (pipe == nullptr && !in_flight) {
      orphaned.clear();
      delete this;
    }
  }
};

void WritePipeTransport::submit_write() {
  msghdr* m = ops_->scratch(16);  // its iovecs live until submission (IORING_FEAT_SUBMIT_STABLE)
  const int count = queue_.gather(m->msg_iov, 16);
  io_uring_sqe* s = ops_->prepare(write_, 0);
  io_uring_prep_writev(s, fd_, m->msg_iov, unsigned(count), 0);
  write_->in_flight = true;
}
#else
struct PipeWrite final : UringTarget {  // never made: uring_ops() is null in this build
  PipeWrite(UringOps&, WritePipeTransport&) noexcept {}
  void on_completion(unsigned, int, unsigned, bool) noexcept override {}
  void let_go(WriteQueue&) noexcept {}
  bool in_flight = false;
};
void WritePipeTransport::submit_write() {}
#endif

ReadPipeTransport::~ReadPipeTransport() { let_go_of_read(); }

void ReadPipeTransport::let_go_of_read() noexcept {
  if (PipeRead* r = std::exchange(read_, nullptr)) r->let_go();
}

// From PipeRead: `res` > 0 bytes in `data`; 0: EOF; < 0: an error (-EAGAIN, -ENOBUFS: none, read on).
void ReadPipeTransport::read_completed(int res, std::span<const std::byte> data) {
  if (lost_) return;
  if (res > 0) {
    owner_->pipe_data(child_fd_, data);  // may close this pipe (it then let go of its read)
  } else if (res == 0) {
    end(nullptr);  // EOF: every writer closed its end
    return;
  } else if (res != -EAGAIN && res != -EINTR && res != -ENOBUFS && res != -ECANCELED) {
    lose_on_error(-res);
    return;
  }
  if (read_ == nullptr || lost_ || !reading_ || read_->in_flight) return;
  try {
    read_->arm();
  } catch (const std::system_error& e) {
    lose_on_error(e.code().value());
  }
}

void ReadPipeTransport::end(std::exception_ptr exc) {
  let_go_of_read();
  lose(std::move(exc));
}

void ReadPipeTransport::lose_on_error(int err) {
  end(std::make_exception_ptr(
      std::system_error(err, std::generic_category(), "read from the child's fd " + std::to_string(child_fd_))));
}

void ReadPipeTransport::start() {
  if (UringOps* ops = uring_ops(*loop_)) {
    ops->ensure_buffers();
    // Known to the loop but never polled, so that the loop's close() ends the pipe.
    loop_->watch(fd_, Events::none, this);
    ops_ = ops;
    read_ = new PipeRead(*ops, *this, fd_);
    read_->arm();
    return;
  }
  loop_->watch(fd_, Events::read, this);
}

void ReadPipeTransport::close() {
  if (closing_ || lost_) return;
  closing_ = true;
  end(nullptr);
}

void ReadPipeTransport::pause_reading() {
  if (!reading_ || is_closing()) return;
  reading_ = false;
  if (!ops_) loop_->update_watch(fd_, Events::none);  // io_uring: a chunk read meanwhile is held
}

void ReadPipeTransport::resume_reading() {
  if (reading_ || is_closing()) return;
  reading_ = true;
  if (!ops_) {
    loop_->update_watch(fd_, Events::read);
  } else if (read_ != nullptr && !read_->in_flight) {
    if (read_->held_id >= 0 || read_->held_eof) {
      read_->hand_over();
    } else {
      read_->arm();
    }
  }
}

void ReadPipeTransport::on_io(Events) {
  if (lost_ || !reading_) return;
  // One read per readiness (level-triggered): a child that writes without pause cannot starve the loop.
  std::span<std::byte> buf = shared_read_buffer();
  ssize_t n = ::read(fd_, buf.data(), buf.size());
  if (n > 0) {
    owner_->pipe_data(child_fd_, buf.first(static_cast<std::size_t>(n)));
  } else if (n == 0) {
    lose(nullptr);  // EOF: every writer closed its end
  } else if (errno != EAGAIN && errno != EINTR) {
    lose(std::make_exception_ptr(
        std::system_error(errno, std::generic_category(), "read from the child's fd " + std::to_string(child_fd_))));
  }
}

// --------------------------------------------------------------------------- WritePipeTransport

void WritePipeTransport::start() {
  ignore_sigpipe_once();
  loop_->watch(fd_, Events::read, this);
  if (UringOps* ops = uring_ops(*loop_)) {
    ops_ = ops;
    write_ = new PipeWrite(*ops, *this);
  }
}

WritePipeTransport::~WritePipeTransport() { let_go_of_write(); }

void WritePipeTransport::let_go_of_write() noexcept {
  if (PipeWrite* w = std::exchange(write_, nullptr)) w->let_go(queue_);
}

void WritePipeTransport::end(std::exception_ptr exc) {
  let_go_of_write();
  lose(std::move(exc));
}

void WritePipeTransport::close() {
  if (closing_ || lost_) {
    closing_ = true;
    return;
  }
  closing_ = true;
  if (queue_.empty()) end(nullptr);  // else flush() (io_uring: the last write's completion) closes once drained
}

void WritePipeTransport::abort() {
  closing_ = true;
  if (lost_) return;
  let_go_of_write();  // a write in flight keeps its chunks
  queue_.clear();
  lose(nullptr);
}

bool WritePipeTransport::check_writable() {
  if (closing_) throw std::logic_error("write to the child's stdin after close() or write_eof()");
  return !lost_;
}

void WritePipeTransport::write(std::span<const std::byte> data) {
  if (!check_writable() || data.empty()) return;
  if (queue_.empty() && !write_) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) return fail(errno);
      n = 0;
    }
    if (static_cast<std::size_t>(n) == data.size()) return;
    data = data.subspan(static_cast<std::size_t>(n));
  }
  queue_.append(data);
  after_write();
}

void WritePipeTransport::writelines(std::span<const std::span<const std::byte>> pieces) {
  if (!check_writable()) return;
  std::size_t skip = 0;  // bytes of `pieces` the kernel took
  if (queue_.empty() && !write_) {
    iovec iov[WriteQueue::max_iov];
    int cnt = 0;
    for (const auto& p : pieces) {
      if (cnt == WriteQueue::max_iov) break;
      if (p.empty()) continue;
      iov[cnt].iov_base = const_cast<std::byte*>(p.data());
      iov[cnt].iov_len = p.size();
      ++cnt;
    }
    if (cnt == 0) return;
    ssize_t n = ::writev(fd_, iov, cnt);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) return fail(errno);
      n = 0;
    }
    skip = static_cast<std::size_t>(n);
  }
  for (auto p : pieces) {
    if (skip >= p.size()) {
      skip -= p.size();
      continue;
    }
    queue_.append(p.subspan(skip));
    skip = 0;
  }
  if (!queue_.empty()) after_write();
}

void WritePipeTransport::after_write() {
  if (write_ != nullptr) {
    if (!write_->in_flight) {
      loop_->update_watch(fd_, Events::none);  // a POLLERR would be reported in every pass while the write waits
      try {
        submit_write();
      } catch (const std::system_error& e) {
        return fail(e.code().value());
      }
    }
  } else if (!watching_write_) {
    watching_write_ = true;
    loop_->update_watch(fd_, Events::read_write);
  }
  if (!paused_ && queue_.size() > high_) {
    paused_ = true;
    owner_->pipe_pause_writing();
  }
}

void WritePipeTransport::set_write_buffer_limits(std::size_t high, std::size_t low) {
  if (low == SIZE_MAX) low = high / 4;
  if (low > high) throw std::invalid_argument("set_write_buffer_limits: low > high");
  high_ = high;
  low_ = low;
  if (!lost_ && !paused_ && queue_.size() > high_) {
    paused_ = true;
    owner_->pipe_pause_writing();
  }
}

void WritePipeTransport::on_io(Events) {
  if (lost_) return;
  if (queue_.empty()) {
    // Only `read` was asked: the reading end is gone (the child exited or closed its stdin). Nothing was lost.
    end(nullptr);
    return;
  }
  if (write_ != nullptr) return;  // io_uring: the write in flight meets the EPIPE
  flush();                        // meets EPIPE if the reader is gone
}

void WritePipeTransport::flush() {
  iovec iov[WriteQueue::max_iov];
  int cnt = queue_.gather(iov, WriteQueue::max_iov);
  ssize_t n = ::writev(fd_, iov, cnt);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) fail(errno);
    return;
  }
  queue_.consume(static_cast<std::size_t>(n));
  if (queue_.empty()) {
    watching_write_ = false;
    loop_->update_watch(fd_, Events::read);
  }
  if (paused_ && queue_.size() <= low_) {
    paused_ = false;
    owner_->pipe_resume_writing();  // may close or abort us
  }
  if (!lost_ && closing_ && queue_.empty()) lose(nullptr);
}

void WritePipeTransport::fail(int err) {
  let_go_of_write();
  queue_.clear();
  lose(std::make_exception_ptr(std::system_error(err, std::generic_category(), "write to the child's stdin")));
}

// io_uring: `res` bytes of the queue's head went into the pipe (or an error).
void WritePipeTransport::written(int res) {
  if (lost_) return;
  if (res < 0) {
    if (res != -EAGAIN && res != -EINTR) return fail(-res);  // EPIPE: the child closed its stdin or exited
  } else {
    queue_.consume(static_cast<std::size_t>(res));
  }
  if (paused_ && queue_.size() <= low_) {
    paused_ = false;
    owner_->pipe_resume_writing();  // may close or abort us
    if (lost_ || write_ == nullptr) return;
  }
  if (!queue_.empty()) {
    if (write_->in_flight) return;
    try {
      submit_write();
    } catch (const std::system_error& e) {
      fail(e.code().value());
    }
    return;
  }
  if (closing_) return end(nullptr);
  loop_->update_watch(fd_, Events::read);  // idle: polled again for the reader's going away
}

}  // namespace tulipa::detail
