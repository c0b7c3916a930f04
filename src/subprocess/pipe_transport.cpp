#include "subprocess/pipe_transport.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "net/lost_call.hpp"
#include "net/read_buffer.hpp"
#include "subprocess/spawn.hpp"

namespace tulipa::detail {

// --------------------------------------------------------------------------- PipeBase

PipeBase::~PipeBase() {
  if (fd_ >= 0) {
    if (!lost_) loop_->unwatch(fd_);
    ::close(fd_);
  }
}

void PipeBase::lose(std::exception_ptr exc) {
  if (lost_) return;
  lost_ = true;
  loop_->unwatch(fd_);
  loop_->call_soon(LostCall<PipeBase>(this, std::move(exc)));
}

void PipeBase::call_connection_lost(std::exception_ptr exc) {
  ::close(fd_);
  fd_ = -1;
  owner_->pipe_lost(child_fd_, std::move(exc));
}

// --------------------------------------------------------------------------- ReadPipeTransport

void ReadPipeTransport::start() { loop_->watch(fd_, Events::read, this); }

void ReadPipeTransport::close() {
  if (closing_ || lost_) return;
  closing_ = true;
  lose(nullptr);
}

void ReadPipeTransport::pause_reading() {
  if (!reading_ || is_closing()) return;
  reading_ = false;
  loop_->update_watch(fd_, Events::none);
}

void ReadPipeTransport::resume_reading() {
  if (reading_ || is_closing()) return;
  reading_ = true;
  loop_->update_watch(fd_, Events::read);
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
}

void WritePipeTransport::close() {
  if (closing_ || lost_) {
    closing_ = true;
    return;
  }
  closing_ = true;
  if (queue_.empty()) lose(nullptr);  // else flush() closes once the queue drained
}

void WritePipeTransport::abort() {
  closing_ = true;
  if (lost_) return;
  queue_.clear();
  lose(nullptr);
}

bool WritePipeTransport::check_writable() {
  if (closing_) throw std::logic_error("write to the child's stdin after close() or write_eof()");
  return !lost_;
}

void WritePipeTransport::write(std::span<const std::byte> data) {
  if (!check_writable() || data.empty()) return;
  if (queue_.empty()) {
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
  if (queue_.empty()) {
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
  if (!watching_write_) {
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
    lose(nullptr);
    return;
  }
  flush();  // meets EPIPE if the reader is gone
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
  queue_.clear();
  lose(std::make_exception_ptr(std::system_error(err, std::generic_category(), "write to the child's stdin")));
}

}  // namespace tulipa::detail
