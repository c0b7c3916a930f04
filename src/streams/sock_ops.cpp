// sock_recv & co (sock.hpp): try the system call, wait with add_reader/add_writer only on EAGAIN, retry in the
// readiness callback (as asyncio's selector loop does), wake the task once the operation finished.
#include "tulipa/sock.hpp"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <system_error>

#include "net/read_buffer.hpp"
#include "tulipa/detail/bytes_access.hpp"
#include "tulipa/loop.hpp"

namespace tulipa {

namespace {
bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }
}  // namespace

namespace detail {

bool SockWait::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  // The callback captures only `this` (fits the Callback's inline storage: no allocation).
  if (for_write_) {
    loop_->add_writer(fd_, [this] { on_ready(); });
  } else {
    loop_->add_reader(fd_, [this] { on_ready(); });
  }
  registered_ = true;
  return true;
}

SockWait::~SockWait() { unregister(); }

void SockWait::unregister() noexcept {
  if (!registered_) return;
  registered_ = false;
  try {
    if (for_write_) {
      loop_->remove_writer(fd_);
    } else {
      loop_->remove_reader(fd_);
    }
  } catch (...) {
    // A closed loop has forgotten the fd already.
  }
}

void SockWait::on_ready() noexcept {
  bool finished;
  try {
    finished = attempt();
  } catch (...) {
    err_ = ENOMEM;  // the only thing an attempt can throw is bad_alloc (sock_recv's chunk)
    finished = true;
  }
  if (!finished) return;  // spurious readiness: keep waiting
  unregister();
  wake();
}

Suspension::Cancel SockWait::on_cancel() noexcept {
  unregister();
  return Cancel::detached;
}

void SockWait::check_error(const char* op) const {
  check_cancelled();
  if (err_) throw std::system_error(err_, std::generic_category(), op);
}

void SockWait::describe_op(std::ostream& os, const char* op) const { os << op << "(fd " << fd_ << ")"; }

}  // namespace detail

// --- sock_recv: read into the thread's shared read buffer, keep only what came, in a right-sized chunk (a
// waiting sock_recv holds no buffer).
bool SockRecv::attempt() {
  if (n_ == 0) return true;
  n_ = std::min(n_, Bytes::max_size);  // recv may return less than asked anyway
  std::span<std::byte> shared = detail::shared_read_buffer();
  if (n_ > shared.size()) {
    // Larger than the shared buffer: straight into a chunk of its own.
    detail::Chunk chunk = detail::chunk_alloc(n_);
    ssize_t r = ::recv(fd_, chunk.data, n_, 0);
    int err = r < 0 ? errno : 0;
    if (r <= 0) {
      detail::chunk_free(chunk);
      if (would_block(err)) return false;
      err_ = err;
      return true;
    }
    result_ = detail::BytesAccess::adopt(chunk, 0, static_cast<std::size_t>(r));
    return true;
  }
  ssize_t r = ::recv(fd_, shared.data(), n_, 0);
  if (r < 0) {
    if (would_block(errno)) return false;
    err_ = errno;
    return true;
  }
  if (r > 0) result_ = Bytes(shared.first(static_cast<std::size_t>(r)));
  return true;
}
Bytes SockRecv::await_resume() {
  check_error("recv");
  return std::move(result_);
}
void SockRecv::describe(std::ostream& os) const { describe_op(os, "sock_recv"); }

bool SockRecvInto::attempt() {
  if (buf_.empty()) return true;
  ssize_t r = ::recv(fd_, buf_.data(), buf_.size(), 0);
  if (r < 0) {
    if (would_block(errno)) return false;
    err_ = errno;
    return true;
  }
  got_ = static_cast<std::size_t>(r);
  return true;
}
std::size_t SockRecvInto::await_resume() {
  check_error("recv");
  return got_;
}
void SockRecvInto::describe(std::ostream& os) const { describe_op(os, "sock_recv_into"); }

bool SockSendall::attempt() {
  while (sent_ < data_.size()) {
    ssize_t r = ::send(fd_, data_.data() + sent_, data_.size() - sent_, MSG_NOSIGNAL);
    if (r < 0) {
      if (would_block(errno)) return false;
      err_ = errno;
      return true;
    }
    sent_ += static_cast<std::size_t>(r);
  }
  return true;
}
void SockSendall::await_resume() { check_error("send"); }
void SockSendall::describe(std::ostream& os) const { describe_op(os, "sock_sendall"); }

bool SockAccept::attempt() {
  SocketAddress& a = result_.address;
  socklen_t len = SocketAddress::capacity;
  int fd = ::accept4(fd_, static_cast<sockaddr*>(a.data()), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    // ECONNABORTED: the peer gave up before we accepted; wait for the next one (asyncio retries too).
    if (would_block(errno) || errno == ECONNABORTED) return false;
    err_ = errno;
    return true;
  }
  a.set_size(len);
  result_.fd = fd;
  return true;
}
Accepted SockAccept::await_resume() {
  check_error("accept");
  return std::exchange(result_, Accepted{});
}
void SockAccept::describe(std::ostream& os) const { describe_op(os, "sock_accept"); }

bool SockConnect::attempt() {
  if (!started_) {
    started_ = true;
    if (::connect(fd_, static_cast<const sockaddr*>(address_->data()), address_->size()) == 0) return true;
    if (errno == EINPROGRESS || errno == EINTR || errno == EAGAIN) return false;
    err_ = errno;
    return true;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == EINPROGRESS) return false;
  err_ = err;
  return true;
}
void SockConnect::await_resume() { check_error(("connect to " + address_->to_string()).c_str()); }
void SockConnect::describe(std::ostream& os) const { describe_op(os, "sock_connect"); }

}  // namespace tulipa
