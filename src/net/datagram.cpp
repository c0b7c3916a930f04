// Datagram endpoints (asyncio's _SelectorDatagramTransport): UDP or Unix datagram sockets.
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "loop/error_context.hpp"
#include "net/lost_call.hpp"
#include "net/read_buffer.hpp"
#include "net/sockets.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

namespace tulipa {
namespace {

class DatagramSocketTransport final : public DatagramTransport, public IoWatcher {
 public:
  DatagramSocketTransport(EventLoop& loop, int fd, std::unique_ptr<DatagramProtocol> protocol, bool connected)
      : loop_(loop), protocol_(std::move(protocol)), fd_(fd), connected_(connected) {}

  void start() {
    try {
      protocol_->connection_made(*this);
    } catch (...) {
      protocol_error("Fatal error: protocol.connection_made() call failed", std::current_exception());
      return;
    }
    if (lost_) return;
    started_ = true;
    loop_.watch(fd_, Events::read, this);
  }

  void close() override {
    if (closing_) return;
    closing_ = true;
    if (queue_.empty()) {
      schedule_connection_lost(nullptr);
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
    if (queue_.empty()) {
      if (send_one(data, to)) return;
    }
    queue_.push_back(Packet{std::vector<std::byte>(data.begin(), data.end()), connected_ ? SocketAddress{} : to});
    buffered_ += data.size();
    if (queue_.size() == 1) loop_.update_watch(fd_, Events::read_write);
  }
  std::size_t get_write_buffer_size() const noexcept override { return buffered_; }
  void abort() override {
    queue_.clear();
    buffered_ = 0;
    closing_ = true;
    schedule_connection_lost(nullptr);
  }

  void on_io(Events ready) override {
    if (any(ready & Events::read) && !closing_) read_ready();
    if (any(ready & Events::write) && !lost_) write_ready();
  }

 private:
  struct Packet {
    std::vector<std::byte> data;
    SocketAddress to;
  };

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
    queue_.clear();
    buffered_ = 0;
    closing_ = true;
    schedule_connection_lost(exc);
  }

  // The loop closes while this endpoint is open: it ends at once (connection_lost, then freed).
  void on_loop_close() noexcept override {
    if (lost_) return;  // its connection_lost callback is pending: dropping it ends the endpoint
    queue_.clear();
    buffered_ = 0;
    closing_ = true;
    lost_ = true;
    if (started_) loop_.unwatch(fd_);
    call_connection_lost(nullptr);
  }

  void schedule_connection_lost(std::exception_ptr exc) {
    if (lost_) return;
    lost_ = true;
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
    ::close(fd_);
    delete this;
  }

  EventLoop& loop_;
  std::unique_ptr<DatagramProtocol> protocol_;
  std::deque<Packet> queue_;
  std::size_t buffered_ = 0;
  int fd_;
  bool connected_;
  bool started_ = false;
  bool closing_ = false;
  bool lost_ = false;
};

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
