// The completion stream transport (uring_socket_transport.hpp says how it reads, writes and ends).
#include "net/uring_socket_transport.hpp"

#if TULIPA_HAVE_URING

#include <errno.h>
#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "loop/error_context.hpp"
#include "net/lost_call.hpp"
#include "net/lost_writes.hpp"
#include "net/pool.hpp"
#include "net/server_core.hpp"
#include "net/sockets.hpp"
#include "net/write_flow.hpp"

namespace tulipa::detail {

namespace {
using UringTransportPool = FixedPool<sizeof(UringSocketTransport)>;

std::exception_ptr os_exception(int err, const char* op) {
  return std::make_exception_ptr(std::system_error(err, std::generic_category(), op));
}

constexpr int max_send_pieces = 16;  // UringOps::scratch's room

// From this size a write with nothing queued goes out at once with send(2): copying it into the queue (so that it
// outlives a send operation) would cost more than the system call (64 KiB echoes: 33-39 µs of server CPU per
// message inline against 45-46 µs through the ring). Smaller writes join the loop pass's one io_uring_enter.
constexpr std::size_t inline_send_min = 4096;
}  // namespace

// Copied out of the provided buffers, which are shared by the loop's connections (and, incremental, by several
// receives at once): a paused connection must not keep them from the kernel.
struct UringSocketTransport::Held {
  std::vector<std::byte> bytes;
  std::size_t next = 0;  // delivered so far
  bool eof = false;      // the peer's EOF came after these bytes
};

void* UringSocketTransport::operator new(std::size_t size) {
  if (size != sizeof(UringSocketTransport)) return ::operator new(size);
  return UringTransportPool::local().allocate();
}
void UringSocketTransport::operator delete(void* p) noexcept { UringTransportPool::local().deallocate(p); }

UringSocketTransport* UringSocketTransport::create(EventLoop& loop, UringOps& ops, int fd,
                                                   std::unique_ptr<StreamProtocol> protocol, ServerCore* server) {
  if (!protocol) throw std::invalid_argument("transport: the protocol is null");
  ops.ensure_buffers();
  return new UringSocketTransport(loop, ops, fd, std::move(protocol), server);
}

UringSocketTransport::UringSocketTransport(EventLoop& loop, UringOps& ops, int fd,
                                           std::unique_ptr<StreamProtocol> protocol, ServerCore* server) noexcept
    : loop_(&loop), ops_(&ops), protocol_(protocol.release()), server_(server), fd_(fd) {
  if (server_) server_->attach(this);
}

UringSocketTransport::~UringSocketTransport() {
  delete protocol_;
  if (server_) server_->detach(this);
  delete held_;
}

void UringSocketTransport::start() {
  try {
    protocol_->connection_made(*this);
  } catch (...) {
    protocol_error("Fatal error: protocol.connection_made() call failed", std::current_exception());
    return;
  }
  if (lost_) return;
  started_ = true;
  loop_->watch(fd_, Events::none, this);
  maybe_rearm();
}

// --- reading

void UringSocketTransport::arm_recv() {
  io_uring_sqe* s = ops_->prepare(this, op_recv);
  io_uring_prep_recv_multishot(s, fd_, nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = UringOps::buffer_group;
  recv_armed_ = true;
}

void UringSocketTransport::stop_recv() {
  if (recv_armed_) ops_->cancel(this, op_recv);
}

void UringSocketTransport::maybe_rearm() {
  if (!started_ || recv_armed_ || lost_ || closing_ || peer_eof_ || !reading_ || held_) return;
  arm_recv();
}

void UringSocketTransport::on_completion(unsigned op, int res, unsigned flags, bool teardown) noexcept {
  if (op == op_recv) {
    if (!(flags & IORING_CQE_F_MORE)) recv_armed_ = false;
    if (teardown || dead_) {
      if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
        ops_->received(res, flags);
        ops_->release(flags);
      }
    } else {
      received(res, flags);
    }
  } else {
    sending_ = false;
    if (teardown || lost_) {
      queue_.clear();  // the kernel is done with it
    } else {
      sent(res);
    }
  }
  maybe_free();
}

void UringSocketTransport::received(int res, unsigned flags) {
  if (res > 0) {
    std::span<const std::byte> data = ops_->received(res, flags);
    if (lost_ || closing_ || peer_eof_) {
      // dropped, as a readiness transport would not read them
    } else if (!reading_ || held_) {
      hold(data);
    } else if (std::size_t left = deliver(data)) {
      hold(data.last(left));
    }
    ops_->release(flags);
  } else if (res == 0) {
    if (lost_ || peer_eof_) return;
    if (!reading_ || held_) {
      // After what is held, and not while paused (a readiness transport would not read it either).
      if (!held_) held_ = new Held;
      held_->eof = true;
    } else {
      eof_from_peer();
    }
    return;
  } else if (res == -ENOBUFS) {
    ops_->count_shortage();
  } else if (res != -ECANCELED) {
    if (!lost_) os_error(-res, "recv");
    return;
  }
  // A multishot receive ends on ENOBUFS, on cancellation, and whenever the kernel decides (no F_MORE).
  maybe_rearm();
}

// Hands `data` to the protocol; returns 0, or, when a BufferedProtocol paused reading midway (or the transport ended
// meanwhile), how many bytes at the end of `data` it did not take, which the caller holds.
std::size_t UringSocketTransport::deliver(std::span<const std::byte> data) {
  while (!data.empty() && !lost_) {
    if (!reading_) return data.size();
    if (!protocol_->is_buffered()) {
      try {
        static_cast<Protocol*>(protocol_)->data_received(data);
      } catch (...) {
        protocol_error("Fatal error: protocol.data_received() call failed", std::current_exception());
      }
      break;
    }
    auto* p = static_cast<BufferedProtocol*>(protocol_);
    try {
      std::span<std::byte> buf = p->get_buffer(data.size());
      if (buf.empty()) throw std::logic_error("get_buffer() returned a zero-sized buffer");
      const std::size_t n = std::min(buf.size(), data.size());
      std::memcpy(buf.data(), data.data(), n);
      data = data.subspan(n);
      p->buffer_updated(n);
    } catch (...) {
      protocol_error("Fatal error: protocol.get_buffer()/buffer_updated() call failed", std::current_exception());
      break;
    }
  }
  return 0;
}

void UringSocketTransport::hold(std::span<const std::byte> data) {
  if (!held_) held_ = new Held;
  held_->bytes.insert(held_->bytes.end(), data.begin(), data.end());
}

// resume_reading's callback: what arrived while paused, in order, then the receive again.
struct UringSocketTransport::FlushCall {
  UringSocketTransport* t;
  explicit FlushCall(UringSocketTransport* transport) noexcept : t(transport) {}
  FlushCall(FlushCall&& o) noexcept : t(std::exchange(o.t, nullptr)) {}
  FlushCall& operator=(FlushCall&&) = delete;
  ~FlushCall() {
    if (!t) return;
    t->flush_pending_ = false;
    t->maybe_free();
  }
  void operator()() {
    UringSocketTransport* tr = std::exchange(t, nullptr);
    tr->flush_pending_ = false;
    tr->flush_held();
    tr->maybe_free();
  }
};

void UringSocketTransport::flush_held() {
  if (held_ && held_->next < held_->bytes.size() && reading_ && !lost_) {
    // (Nothing is added to, or frees, what is held while the protocol runs: receives complete only in select().)
    const std::size_t left = deliver(std::span<const std::byte>(held_->bytes).subspan(held_->next));
    held_->next = held_->bytes.size() - left;  // paused again midway: the rest stays first in line
    if (left) return;
  }
  if (!held_ || lost_) return;
  if (held_->next == held_->bytes.size() && reading_) {
    const bool eof = held_->eof;
    release_held();
    if (eof) {
      eof_from_peer();
      return;
    }
  }
  maybe_rearm();
}

void UringSocketTransport::release_held() noexcept { delete std::exchange(held_, nullptr); }

void UringSocketTransport::eof_from_peer() {
  peer_eof_ = true;
  bool keep_open = false;
  try {
    keep_open = protocol_->eof_received();
  } catch (...) {
    protocol_error("Fatal error: protocol.eof_received() call failed", std::current_exception());
    return;
  }
  if (!keep_open || eof_sent_) close();
}

void UringSocketTransport::pause_reading() {
  if (closing_ || !reading_) return;
  reading_ = false;
  stop_recv();
}

void UringSocketTransport::resume_reading() {
  if (closing_ || reading_) return;
  reading_ = true;
  if (held_ && !flush_pending_) {
    flush_pending_ = true;
    loop_->call_soon(FlushCall(this));
    return;
  }
  maybe_rearm();  // if the cancelled receive has not ended yet, its final completion arms it again
}

// --- writing

void UringSocketTransport::submit_send() {
  iovec first;
  if (queue_.gather(&first, 1) == 1 && first.iov_len == queue_.size()) {
    // One piece: a plain send, which spares the kernel the msghdr and iovec it would copy in.
    io_uring_sqe* s = ops_->prepare(this, op_send);
    io_uring_prep_send(s, fd_, first.iov_base, first.iov_len, MSG_NOSIGNAL);
  } else {
    msghdr* msg = ops_->scratch(max_send_pieces);
    msg->msg_iovlen = std::size_t(queue_.gather(msg->msg_iov, max_send_pieces));
    io_uring_sqe* s = ops_->prepare(this, op_send);
    io_uring_prep_sendmsg(s, fd_, msg, MSG_NOSIGNAL);
  }
  sending_ = true;
}

void UringSocketTransport::sent(int res) {
  if (res < 0) {
    os_error(-res, "send");
    return;
  }
  queue_.consume(std::size_t(res));
  maybe_resume_protocol();  // may write more (and send it)
  if (lost_ || sending_) return;
  if (!queue_.empty()) {
    submit_send();
  } else {
    after_drain();
  }
}

void UringSocketTransport::after_drain() {
  if (lost_) return;
  if (closing_) {
    schedule_connection_lost(nullptr);
    return;
  }
  if (eof_pending_ && !eof_sent_) {
    eof_sent_ = true;
    if (::shutdown(fd_, SHUT_WR) != 0 && errno != ENOTCONN) {
      os_error(errno, "shutdown");
      return;
    }
    if (peer_eof_) close();
  }
}

void UringSocketTransport::write(std::span<const std::byte> data) {
  if (eof_pending_) throw std::logic_error("transport: write() after write_eof()");
  if (data.empty()) return;
  if (lost_) return detail::count_lost_write(*loop_, lost_writes_, "socket transport");
  if (!sending_ && data.size() >= inline_send_min) {
    // Nothing queued: the kernel takes the bytes now, which spares copying them into the queue to keep them alive
    // until a send operation completes.
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return os_error(errno, "send");
      n = 0;
    }
    if (std::size_t(n) == data.size()) return;
    data = data.subspan(std::size_t(n));
  }
  queue_.append(data);
  if (!sending_) submit_send();
  maybe_pause_protocol();
}

void UringSocketTransport::writelines(std::span<const std::span<const std::byte>> pieces) {
  if (eof_pending_) throw std::logic_error("transport: writelines() after write_eof()");
  if (lost_) return detail::count_lost_write(*loop_, lost_writes_, "socket transport");
  for (auto piece : pieces) queue_.append(piece);
  if (queue_.empty()) return;
  if (!sending_) submit_send();
  maybe_pause_protocol();
}

void UringSocketTransport::set_write_buffer_limits(std::size_t high, std::size_t low) {
  WriteFlow<UringSocketTransport>::set_limits(*this, high, low);
}

void UringSocketTransport::maybe_pause_protocol() { WriteFlow<UringSocketTransport>::maybe_pause(*this); }

void UringSocketTransport::maybe_resume_protocol() { WriteFlow<UringSocketTransport>::maybe_resume(*this); }

void UringSocketTransport::write_eof() {
  if (closing_ || eof_pending_) return;
  eof_pending_ = true;
  if (queue_.empty() && !sending_) after_drain();
}

// --- ending

void UringSocketTransport::close() {
  if (closing_) return;
  closing_ = true;
  stop_recv();
  if (queue_.empty() && !sending_) schedule_connection_lost(nullptr);
}

void UringSocketTransport::abort() { force_close(nullptr); }

void UringSocketTransport::os_error(int err, const char* op) { force_close(os_exception(err, op)); }

void UringSocketTransport::protocol_error(const char* what, std::exception_ptr exc) {
  loop_->call_exception_handler(detail::error_context(what, exc, fd_));
  force_close(exc);
}

void UringSocketTransport::force_close(std::exception_ptr exc) {
  if (lost_) return;
  if (!sending_) queue_.clear();  // else when the send's completion says the kernel is done with it
  closing_ = true;
  schedule_connection_lost(std::move(exc));
}

void UringSocketTransport::schedule_connection_lost(std::exception_ptr exc) {
  if (lost_) return;
  lost_ = true;
  closing_ = true;
  stop_recv();
  if (sending_) ops_->cancel(this, op_send);
  if (started_) loop_->unwatch(fd_);
  loop_->call_soon(LostCall<UringSocketTransport>(this, std::move(exc)));
}

void UringSocketTransport::on_loop_close() noexcept {
  if (lost_) return;  // its connection_lost callback is pending: dropping it ends the connection
  lost_ = true;
  closing_ = true;
  if (!sending_) queue_.clear();
  try {
    stop_recv();
    if (sending_) ops_->cancel(this, op_send);
  } catch (...) {
    // No SQE to be had: the ring's teardown cancels everything anyway.
  }
  if (started_) loop_->unwatch(fd_);
  call_connection_lost(nullptr);
}

void UringSocketTransport::call_connection_lost(std::exception_ptr exc) {
  try {
    protocol_->connection_lost(std::move(exc));
  } catch (...) {
    loop_->call_exception_handler(
        detail::error_context("protocol.connection_lost() failed", std::current_exception(), fd_));
  }
  delete std::exchange(protocol_, nullptr);
  if (ServerCore* s = std::exchange(server_, nullptr)) s->detach(this);
  release_held();
  ops_->close_fd(fd_);  // operations in flight hold the file itself, which the kernel closes after them
  dead_ = true;
  maybe_free();
}

// Freed only once no operation is in flight: the kernel may still write into provided buffers it names and read the
// write queue's chunks.
void UringSocketTransport::maybe_free() noexcept {
  if (!dead_ || recv_armed_ || sending_ || flush_pending_) return;
  delete this;
}

std::unique_ptr<StreamProtocol> UringSocketTransport::set_protocol(std::unique_ptr<StreamProtocol> protocol) {
  if (!protocol) throw std::invalid_argument("transport: set_protocol(null)");
  std::unique_ptr<StreamProtocol> old(protocol_);
  protocol_ = protocol.release();
  return old;
}

SocketAddress UringSocketTransport::peername() const { return peer_address(fd_); }

SocketAddress UringSocketTransport::sockname() const { return local_address(fd_); }

}  // namespace tulipa::detail

#endif  // TULIPA_HAVE_URING
