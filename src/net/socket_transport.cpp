// The stream transport: reads into the shared buffer (or the protocol's own), writes at once when it can.
#include "net/socket_transport.hpp"
#include "loop/error_context.hpp"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <stdexcept>
#include <system_error>
#include <utility>

#include "net/lost_call.hpp"
#include "net/lost_writes.hpp"
#include "net/pool.hpp"
#include "net/read_buffer.hpp"
#include "net/server_core.hpp"
#include "net/write_flow.hpp"

namespace tulipa::detail {

namespace {
using TransportPool = FixedPool<sizeof(SocketTransport)>;

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

std::exception_ptr os_exception(int err, const char* op) {
  return std::make_exception_ptr(std::system_error(err, std::generic_category(), op));
}
}  // namespace

void* SocketTransport::operator new(std::size_t size) {
  if (size != sizeof(SocketTransport)) return ::operator new(size);
  return TransportPool::local().allocate();
}
void SocketTransport::operator delete(void* p) noexcept { TransportPool::local().deallocate(p); }

SocketTransport* SocketTransport::create(EventLoop& loop, int fd, std::unique_ptr<StreamProtocol> protocol,
                                         ServerCore* server) {
  if (!protocol) throw std::invalid_argument("transport: the protocol is null");
  return new SocketTransport(loop, fd, std::move(protocol), server);
}

SocketTransport::SocketTransport(EventLoop& loop, int fd, std::unique_ptr<StreamProtocol> protocol,
                                 ServerCore* server) noexcept
    : loop_(&loop), protocol_(protocol.release()), server_(server), fd_(fd) {
  if (server_) server_->attach(this);
}

SocketTransport::~SocketTransport() {
  delete protocol_;
  if (server_) server_->detach(this);
}

void SocketTransport::start() {
  try {
    protocol_->connection_made(*this);
  } catch (...) {
    protocol_error("Fatal error: protocol.connection_made() call failed", std::current_exception());
    return;
  }
  if (lost_) return;
  started_ = true;
  Events want = Events::none;
  if (reading_ && !closing_) want = want | Events::read;
  if (!queue_.empty()) want = want | Events::write;
  set_watched(want);
  loop_->watch(fd_, want, this);
}

// --- readiness

void SocketTransport::on_io(Events ready) {
  if (any(ready & Events::read)) {
    if (protocol_->is_buffered()) {
      read_buffered();
    } else {
      read_ready();
    }
  }
  if (any(ready & Events::write) && !lost_ && !queue_.empty()) write_ready();
}

// One read per wake-up, as asyncio (and the epoll floor) do: a connection with more data is polled again, and
// the others get their turn in between.
void SocketTransport::read_ready() {
  if (lost_ || !reading_ || peer_eof_) return;
  std::span<std::byte> buf = shared_read_buffer();
  ssize_t n = ::read(fd_, buf.data(), buf.size());
  if (n > 0) {
    try {
      static_cast<Protocol*>(protocol_)->data_received(buf.first(static_cast<std::size_t>(n)));
    } catch (...) {
      protocol_error("Fatal error: protocol.data_received() call failed", std::current_exception());
    }
    return;
  }
  if (n == 0) {
    eof_from_peer();
    return;
  }
  if (!would_block(errno)) os_error(errno, "read");
}

void SocketTransport::read_buffered() {
  if (lost_ || !reading_ || peer_eof_) return;
  auto* p = static_cast<BufferedProtocol*>(protocol_);
  std::span<std::byte> buf;
  try {
    buf = p->get_buffer(read_buffer_size);
    if (buf.empty()) throw std::logic_error("get_buffer() returned a zero-sized buffer");
  } catch (...) {
    protocol_error("Fatal error: protocol.get_buffer() call failed", std::current_exception());
    return;
  }
  ssize_t n = ::read(fd_, buf.data(), buf.size());
  if (n > 0) {
    try {
      p->buffer_updated(static_cast<std::size_t>(n));
    } catch (...) {
      protocol_error("Fatal error: protocol.buffer_updated() call failed", std::current_exception());
    }
    return;
  }
  if (n == 0) {
    eof_from_peer();
    return;
  }
  if (!would_block(errno)) os_error(errno, "read");
}

void SocketTransport::eof_from_peer() {
  peer_eof_ = true;
  update_interest();
  bool keep_open = false;
  try {
    keep_open = protocol_->eof_received();
  } catch (...) {
    protocol_error("Fatal error: protocol.eof_received() call failed", std::current_exception());
    return;
  }
  // Both directions done (we sent our EOF already): nothing more can happen on this connection.
  if (!keep_open || eof_sent_) close();
}

void SocketTransport::write_ready() {
  iovec iov[WriteQueue::max_iov];
  int n_iov = queue_.gather(iov, WriteQueue::max_iov);
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<std::size_t>(n_iov);
  ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
  if (n < 0) {
    if (!would_block(errno)) os_error(errno, "send");
    return;
  }
  queue_.consume(static_cast<std::size_t>(n));
  maybe_resume_protocol();
  if (queue_.empty()) after_drain();
}

// The queue just became empty: stop polling for writability, then finish what close()/write_eof() started.
void SocketTransport::after_drain() {
  if (lost_) return;
  if (closing_) {
    schedule_connection_lost(nullptr);
    return;
  }
  update_interest();
  if (eof_pending_ && !eof_sent_) {
    eof_sent_ = true;
    if (::shutdown(fd_, SHUT_WR) != 0 && errno != ENOTCONN) {
      os_error(errno, "shutdown");
      return;
    }
    if (peer_eof_) close();
  }
}

void SocketTransport::update_interest() {
  if (!started_ || lost_) return;
  Events want = Events::none;
  if (reading_ && !peer_eof_ && !closing_) want = want | Events::read;
  if (!queue_.empty()) want = want | Events::write;
  if (want != watched()) {
    set_watched(want);
    loop_->update_watch(fd_, want);
  }
}

// --- writing

void SocketTransport::write(std::span<const std::byte> data) {
  if (eof_pending_) throw std::logic_error("transport: write() after write_eof()");
  if (data.empty()) return;
  // After close() the buffered data is still flushed, so writes join it; once the connection is gone they are
  // dropped, as asyncio does (a broadcast to a departing client is not an error), and counted.
  if (lost_) return detail::count_lost_write(*loop_, lost_writes_, "socket transport");
  if (queue_.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (!would_block(errno)) {
        os_error(errno, "send");
        return;
      }
      n = 0;
    }
    if (static_cast<std::size_t>(n) == data.size()) return;
    queue_.append(data.subspan(static_cast<std::size_t>(n)));
    update_interest();
  } else {
    queue_.append(data);
  }
  maybe_pause_protocol();
}

void SocketTransport::writelines(std::span<const std::span<const std::byte>> pieces) {
  if (eof_pending_) throw std::logic_error("transport: writelines() after write_eof()");
  if (lost_) return detail::count_lost_write(*loop_, lost_writes_, "socket transport");
  std::size_t i = 0;
  if (queue_.empty()) {
    iovec iov[WriteQueue::max_iov];
    int n_iov = 0;
    std::size_t total = 0;
    for (; i < pieces.size() && n_iov < WriteQueue::max_iov; ++i) {
      if (pieces[i].empty()) continue;
      iov[n_iov].iov_base = const_cast<std::byte*>(pieces[i].data());
      iov[n_iov].iov_len = pieces[i].size();
      total += pieces[i].size();
      ++n_iov;
    }
    if (n_iov == 0) return;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(n_iov);
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (!would_block(errno)) {
        os_error(errno, "send");
        return;
      }
      n = 0;
    }
    if (static_cast<std::size_t>(n) == total && i == pieces.size()) return;
    // Queue what the kernel did not take of the pieces just sent.
    std::size_t sent = static_cast<std::size_t>(n);
    for (int k = 0; k < n_iov; ++k) {
      std::size_t len = iov[k].iov_len;
      if (sent >= len) {
        sent -= len;
        continue;
      }
      queue_.append(std::span(static_cast<const std::byte*>(iov[k].iov_base) + sent, len - sent));
      sent = 0;
    }
  }
  for (; i < pieces.size(); ++i) queue_.append(pieces[i]);
  if (queue_.empty()) return;
  update_interest();
  maybe_pause_protocol();
}

void SocketTransport::set_write_buffer_limits(std::size_t high, std::size_t low) {
  WriteFlow<SocketTransport>::set_limits(*this, high, low);
}

void SocketTransport::maybe_pause_protocol() { WriteFlow<SocketTransport>::maybe_pause(*this); }

void SocketTransport::maybe_resume_protocol() { WriteFlow<SocketTransport>::maybe_resume(*this); }

void SocketTransport::write_eof() {
  if (closing_ || eof_pending_) return;
  eof_pending_ = true;
  if (queue_.empty()) after_drain();
}

// --- reading control

void SocketTransport::pause_reading() {
  if (closing_ || !reading_) return;
  reading_ = false;
  update_interest();
}

void SocketTransport::resume_reading() {
  if (closing_ || reading_) return;
  reading_ = true;
  update_interest();
}

// --- ending

void SocketTransport::close() {
  if (closing_) return;
  closing_ = true;
  if (queue_.empty()) {
    schedule_connection_lost(nullptr);
  } else {
    update_interest();  // stop reading, keep flushing
  }
}

void SocketTransport::abort() { force_close(nullptr); }

void SocketTransport::os_error(int err, const char* op) { force_close(os_exception(err, op)); }

void SocketTransport::protocol_error(const char* what, std::exception_ptr exc) {
  loop_->call_exception_handler(detail::error_context(what, exc, fd_));
  force_close(exc);
}

void SocketTransport::force_close(std::exception_ptr exc) {
  if (lost_) return;
  queue_.clear();
  closing_ = true;
  schedule_connection_lost(std::move(exc));
}

void SocketTransport::schedule_connection_lost(std::exception_ptr exc) {
  if (lost_) return;
  if (started_) loop_->unwatch(fd_);
  lost_ = true;
  set_watched(Events::none);
  // As its own loop callback: never inside another protocol method, and after whatever the caller does next.
  loop_->call_soon(LostCall<SocketTransport>(this, std::move(exc)));
}

void SocketTransport::on_loop_close() noexcept {
  if (lost_) return;  // its connection_lost callback is pending: dropping it ends the connection
  queue_.clear();
  closing_ = true;
  if (started_) loop_->unwatch(fd_);
  lost_ = true;
  set_watched(Events::none);
  call_connection_lost(nullptr);
}

void SocketTransport::call_connection_lost(std::exception_ptr exc) {
  try {
    protocol_->connection_lost(std::move(exc));
  } catch (...) {
    loop_->call_exception_handler(
        detail::error_context("protocol.connection_lost() failed", std::current_exception(), fd_));
  }
  ::close(fd_);
  delete this;
}

std::unique_ptr<StreamProtocol> SocketTransport::set_protocol(std::unique_ptr<StreamProtocol> protocol) {
  if (!protocol) throw std::invalid_argument("transport: set_protocol(null)");
  std::unique_ptr<StreamProtocol> old(protocol_);
  protocol_ = protocol.release();
  return old;
}

// --- extra info

SocketAddress SocketTransport::peername() const {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity;
  if (::getpeername(fd_, static_cast<sockaddr*>(a.data()), &len) == 0) a.set_size(len);
  return a;
}

SocketAddress SocketTransport::sockname() const {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity;
  if (::getsockname(fd_, static_cast<sockaddr*>(a.data()), &len) == 0) a.set_size(len);
  return a;
}

}  // namespace tulipa::detail
