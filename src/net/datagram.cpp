// Datagram endpoints (asyncio's _SelectorDatagramTransport): UDP or Unix datagram sockets.
//
// On a loop with io_uring operations (selectors/uring_ops.hpp) the same transport works on operations instead of
// readiness (asyncio's proactor does the same for datagrams):
// - Receiving: one recvmsg in flight, into the endpoint's own 64 KiB buffer (a UDP datagram's largest; the loop's
//   8 KiB provided buffers would truncate bigger ones), armed again after each datagram was handed to the protocol.
//   The buffer is allocated at the first receive and stays as long as the endpoint; on other backends datagrams are
//   read into the loop's shared read buffer as before.
// - Sending: datagrams are queued (copied) and leave as one sendmsg in flight per endpoint; the one in flight is the
//   queue's front.
// - Lifetimes: the receive buffer (with its msghdr and source address) and the queue's front packet belong to the
//   kernel from submission until that operation's completion. abort()/close() cancel what is in flight; the
//   transport calls connection_lost as always, closes its fd, and is freed only at the last operation's final
//   completion (or the ring's teardown, which delivers it).
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "loop/error_context.hpp"
#include "net/lost_call.hpp"
#include "net/read_buffer.hpp"
#include "net/sockets.hpp"
#include "selectors/uring_ops.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

#if TULIPA_HAVE_URING
#include <liburing.h>
#endif

namespace tulipa {
namespace {

class DatagramSocketTransport final : public DatagramTransport, public IoWatcher, public detail::UringTarget {
 public:
  DatagramSocketTransport(EventLoop& loop, int fd, std::unique_ptr<DatagramProtocol> protocol, bool connected)
      : loop_(loop), protocol_(std::move(protocol)), ops_(detail::uring_ops(loop)), fd_(fd), connected_(connected) {}

  void start() {
    try {
      protocol_->connection_made(*this);
    } catch (...) {
      protocol_error("Fatal error: protocol.connection_made() call failed", std::current_exception());
      return;
    }
    if (lost_) return;
    started_ = true;
    if (ops_) {
      loop_.watch(fd_, Events::none, this);  // never polled: known to the loop so that its close() ends the endpoint
      arm_receive();
      return;
    }
    loop_.watch(fd_, Events::read, this);
  }

  void close() override {
    if (closing_) return;
    closing_ = true;
    if (queue_.empty()) {
      schedule_connection_lost(nullptr);
    } else if (ops_) {
      cancel_receive();  // the queue leaves as before; the last send's completion ends the endpoint
    } else {
      loop_.update_watch(fd_, Events::write);
    }
  }
  bool is_closing() const noexcept override { return closing_; }
  EventLoop& get_loop() const noexcept override { return loop_; }
  SocketAddress peername() const override {
    SocketAddress a;
    socklen_t len = SocketAddress::capacity;
    if (connected_ && ::getpeername(fd_, static_cast<sockaddr*>(a.data()), &len) == 0) a.set_size(len);
    return a;
  }
  SocketAddress sockname() const override { return detail::local_address(fd_); }
  int fd() const noexcept override { return fd_; }

  void sendto(std::span<const std::byte> data, const SocketAddress& to) override {
    if (to.empty() && !connected_) throw std::logic_error("sendto: no address, and the endpoint is not connected");
    if (!to.empty() && connected_ && !(to == peername())) {
      throw std::invalid_argument("sendto: the endpoint is connected to " + peername().to_string() + ", not " +
                                  to.to_string());
    }
    if (lost_ || closing_) return;  // dropped, as asyncio does once the endpoint is going away
    if (queue_.empty() && !ops_) {
      if (send_one(data, to)) return;
    }
    queue_.push_back(Packet{std::vector<std::byte>(data.begin(), data.end()), connected_ ? SocketAddress{} : to});
    buffered_ += data.size();
    if (ops_) {
      if (sending_) return;
      try {
        submit_send();
      } catch (...) {
        buffered_ -= data.size();  // not sent, not kept: the caller gets the error
        queue_.pop_back();
        throw;
      }
    } else if (queue_.size() == 1) {
      loop_.update_watch(fd_, Events::read_write);
    }
  }
  std::size_t get_write_buffer_size() const noexcept override { return buffered_; }
  void abort() override {
    drop_queue();
    closing_ = true;
    schedule_connection_lost(nullptr);
  }

  void on_io(Events ready) override {
    if (any(ready & Events::read) && !closing_) read_ready();
    if (any(ready & Events::write) && !lost_) write_ready();
  }

  void on_completion(unsigned op, int res, unsigned flags, bool teardown) noexcept override;

 private:
  struct Packet {
    std::vector<std::byte> data;
    SocketAddress to;
  };
  // io_uring: the one receive in flight (and the buffer, address and msghdr the kernel fills).
  struct Receive {
    msghdr msg;
    iovec iov;
    SocketAddress from;
    std::byte data[64 * 1024];
  };
  enum Op : unsigned { op_recv = 0, op_send = 1 };

  void arm_receive();
  void cancel_receive() noexcept;
  void submit_send();
  void received(int res);
  void sent(int res);
  // What is queued goes, but for a send in flight: the kernel may still read it (dropped at its completion).
  void drop_queue() noexcept {
    if (sending_) {
      queue_.erase(queue_.begin() + 1, queue_.end());
    } else {
      queue_.clear();
    }
    buffered_ = 0;
  }
  void maybe_free() noexcept {
    if (dead_ && !receiving_ && !sending_) delete this;
  }

  // Sends one datagram. true: done with it (sent, or failed with an error the protocol was told about);
  // false: the kernel would block, keep it.
  bool send_one(std::span<const std::byte> data, const SocketAddress& to) {
    ssize_t n = to.empty() || connected_ ? ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL)
                                         : ::sendto(fd_, data.data(), data.size(), MSG_NOSIGNAL,
                                                    static_cast<const sockaddr*>(to.data()), to.size());
    if (n >= 0) return true;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
    error_received(errno);
    return true;
  }

  // Several datagrams per wake-up: each is small, and a busy UDP socket would otherwise cost a poll per packet.
  void read_ready() {
    std::span<std::byte> buf = detail::shared_read_buffer();
    for (int i = 0; i < 16 && !lost_ && !closing_; ++i) {
      SocketAddress from;
      socklen_t len = SocketAddress::capacity;
      ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, static_cast<sockaddr*>(from.data()), &len);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        error_received(errno);
        return;
      }
      from.set_size(len);
      try {
        protocol_->datagram_received(buf.first(static_cast<std::size_t>(n)), from);
      } catch (...) {
        protocol_error("Fatal error: protocol.datagram_received() call failed", std::current_exception());
        return;
      }
    }
  }

  void write_ready() {
    while (!queue_.empty()) {
      Packet& p = queue_.front();
      if (!send_one(p.data, p.to)) return;
      buffered_ -= p.data.size();
      queue_.pop_front();
      if (lost_) return;
    }
    if (closing_) {
      schedule_connection_lost(nullptr);
    } else {
      loop_.update_watch(fd_, Events::read);
    }
  }

  void error_received(int err) {
    try {
      protocol_->error_received(std::error_code(err, std::generic_category()));
    } catch (...) {
      protocol_error("Fatal error: protocol.error_received() call failed", std::current_exception());
    }
  }

  void protocol_error(const char* what, std::exception_ptr exc) {
    loop_.call_exception_handler(detail::error_context(what, exc, fd_));
    drop_queue();
    closing_ = true;
    schedule_connection_lost(exc);
  }

  // The loop closes while this endpoint is open: it ends at once (connection_lost, then freed).
  void on_loop_close() noexcept override {
    if (lost_) return;  // its connection_lost callback is pending: dropping it ends the endpoint
    drop_queue();
    closing_ = true;
    lost_ = true;
    cancel_operations();
    if (started_) loop_.unwatch(fd_);
    call_connection_lost(nullptr);
  }

  void cancel_operations() noexcept {
    try {
      cancel_receive();
      if (sending_) ops_->cancel(this, op_send);
    } catch (...) {
      // No SQE to be had: the ring's teardown cancels everything anyway.
    }
  }

  void schedule_connection_lost(std::exception_ptr exc) {
    if (lost_) return;
    lost_ = true;
    cancel_operations();
    if (started_) loop_.unwatch(fd_);
    // Owned by the callback until it has run (or been dropped by the loop's close()): net/lost_call.hpp.
    loop_.call_soon(detail::LostCall<DatagramSocketTransport>(this, std::move(exc)));
  }

  template <class>
  friend class detail::LostCall;
  void call_connection_lost(std::exception_ptr exc) noexcept {
    try {
      protocol_->connection_lost(std::move(exc));
    } catch (...) {
      loop_.call_exception_handler(
          detail::error_context("protocol.connection_lost() failed", std::current_exception()));
    }
    protocol_.reset();
    if (!ops_) {
      ::close(fd_);
      delete this;
      return;
    }
    ops_->close_fd(fd_);  // operations in flight hold the file itself, which the kernel closes after them
    dead_ = true;
    maybe_free();
  }

  EventLoop& loop_;
  std::unique_ptr<DatagramProtocol> protocol_;
  detail::UringOps* ops_;             // null: readiness
  std::unique_ptr<Receive> receive_;  // io_uring: allocated at the first receive
  std::deque<Packet> queue_;          // io_uring: the front is in flight while `sending_`
  std::size_t buffered_ = 0;
  int fd_;
  bool connected_;
  bool started_ = false;
  bool closing_ = false;
  bool lost_ = false;
  bool receiving_ = false;  // io_uring: a recvmsg is in flight
  bool sending_ = false;    // io_uring: a sendmsg is in flight
  bool dead_ = false;       // io_uring: connection_lost ran; freed at the last final completion
};

#if TULIPA_HAVE_URING
void DatagramSocketTransport::arm_receive() {
  if (!receive_) receive_ = std::make_unique<Receive>();
  Receive& r = *receive_;
  r.iov = iovec{r.data, sizeof r.data};
  r.msg = msghdr{};
  r.msg.msg_name = r.from.data();
  r.msg.msg_namelen = SocketAddress::capacity;
  r.msg.msg_iov = &r.iov;
  r.msg.msg_iovlen = 1;
  io_uring_sqe* s = ops_->prepare(this, op_recv);
  io_uring_prep_recvmsg(s, fd_, &r.msg, 0);
  receiving_ = true;
}

void DatagramSocketTransport::cancel_receive() noexcept {
  if (!receiving_) return;
  try {
    ops_->cancel(this, op_recv);
  } catch (...) {
    // No SQE to be had: the receive completes with the next datagram, or at the ring's teardown.
  }
}

void DatagramSocketTransport::submit_send() {
  Packet& p = queue_.front();
  msghdr* m = ops_->scratch(1);
  m->msg_iov[0] = iovec{p.data.data(), p.data.size()};
  if (!p.to.empty()) {
    m->msg_name = const_cast<void*>(p.to.data());
    m->msg_namelen = p.to.size();
  }
  io_uring_sqe* s = ops_->prepare(this, op_send);
  io_uring_prep_sendmsg(s, fd_, m, MSG_NOSIGNAL);
  sending_ = true;
}

void DatagramSocketTransport::on_completion(unsigned op, int res, unsigned, bool teardown) noexcept {
  if (op == op_recv) {
    receiving_ = false;
    if (!teardown && !dead_) received(res);
  } else {
    sending_ = false;
    if (teardown || dead_) {
      queue_.clear();  // the kernel is done with it
    } else {
      sent(res);
    }
  }
  maybe_free();
}

void DatagramSocketTransport::received(int res) {
  if (lost_ || closing_ || res == -ECANCELED) return;
  if (res >= 0) {
    Receive& r = *receive_;
    r.from.set_size(r.msg.msg_namelen);
    try {
      protocol_->datagram_received(std::span<const std::byte>(r.data, std::size_t(res)), r.from);
    } catch (...) {
      protocol_error("Fatal error: protocol.datagram_received() call failed", std::current_exception());
      return;
    }
  } else if (res != -EINTR && res != -EAGAIN) {
    error_received(-res);  // ECONNREFUSED after an ICMP error, say: the endpoint goes on
  }
  if (lost_ || closing_) return;
  try {
    arm_receive();
  } catch (...) {
    // No SQE to be had even after flushing the ring: the endpoint cannot go on receiving.
    protocol_error("Fatal error: no io_uring submission entry for the next receive", std::current_exception());
  }
}

void DatagramSocketTransport::sent(int res) {
  if (!queue_.empty()) {
    buffered_ -= std::min(buffered_, queue_.front().data.size());
    queue_.pop_front();
  }
  if (res < 0 && res != -ECANCELED && !lost_) error_received(-res);
  if (lost_) {
    queue_.clear();
    return;
  }
  if (!queue_.empty()) {
    try {
      submit_send();
    } catch (...) {
      protocol_error("Fatal error: no io_uring submission entry for the next send", std::current_exception());
    }
    return;
  }
  if (closing_) schedule_connection_lost(nullptr);
}
#else
void DatagramSocketTransport::arm_receive() {}
void DatagramSocketTransport::cancel_receive() noexcept {}
void DatagramSocketTransport::submit_send() {}
void DatagramSocketTransport::on_completion(unsigned, int, unsigned, bool) noexcept {}
#endif

}  // namespace

DatagramTransport& create_datagram_endpoint(EventLoop& loop, std::unique_ptr<DatagramProtocol> protocol,
                                            DatagramOptions options) {
  if (!protocol) throw std::invalid_argument("create_datagram_endpoint: the protocol is null");
  const SocketAddress& local = options.local_addr;
  const SocketAddress& remote = options.remote_addr;
  if (local.empty() && remote.empty()) {
    throw std::invalid_argument("create_datagram_endpoint: give a local address, a remote address, or both");
  }
  if (!local.empty() && !remote.empty() &&
      (local.family() == SocketAddress::Family::unix_path) != (remote.family() == SocketAddress::Family::unix_path)) {
    throw std::invalid_argument("create_datagram_endpoint: local and remote addresses of different families");
  }
  const SocketAddress& any_addr = local.empty() ? remote : local;
  int fd = detail::open_socket(any_addr, SOCK_DGRAM);
  try {
    if (options.reuse_port) detail::set_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT on", any_addr);
    if (options.allow_broadcast) detail::set_option(fd, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST on", any_addr);
    if (!local.empty() && ::bind(fd, static_cast<const sockaddr*>(local.data()), local.size()) != 0) {
      detail::throw_socket_error(errno, "bind to", local);
    }
    if (!remote.empty() && ::connect(fd, static_cast<const sockaddr*>(remote.data()), remote.size()) != 0) {
      detail::throw_socket_error(errno, "connect to", remote);
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  auto* t = new DatagramSocketTransport(loop, fd, std::move(protocol), !remote.empty());
  t->start();
  return *t;
}

}  // namespace tulipa
