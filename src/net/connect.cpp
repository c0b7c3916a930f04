// Outgoing connections: a non-blocking connect() per candidate address, then a transport for the first that works.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <system_error>
#include <utility>

#include "net/socket_transport.hpp"
#include "net/sockets.hpp"
#include "tulipa/net.hpp"

namespace tulipa {
namespace {

// Lives from create_connection until `done` was called; it watches the connecting socket for writability.
class Connector final : public IoWatcher {
 public:
  Connector(EventLoop& loop, ProtocolFactory factory, std::vector<SocketAddress> addresses, ConnectCallback done,
            ConnectOptions options)
      : loop_(loop),
        factory_(std::move(factory)),
        addresses_(std::move(addresses)),
        done_(std::move(done)),
        options_(std::move(options)) {}

  // Starts the first attempt. Never calls `done` itself: a result known at once is delivered on the next pass.
  void start() {
    if (try_next()) return;
    loop_.call_soon([this] { finish(); });
  }

  void on_io(Events) override {
    loop_.unwatch(fd_);
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) {
      finish();
      return;
    }
    fail_current(err);
    if (!try_next()) finish();
  }

 private:
  // Tries addresses until one is connecting (true: wait for writability) or connected/out of addresses (false).
  bool try_next() {
    while (next_ < addresses_.size()) {
      const SocketAddress& a = addresses_[next_++];
      try {
        fd_ = detail::open_socket(a, SOCK_STREAM);
      } catch (...) {
        error_ = std::current_exception();
        continue;
      }
      if (!options_.local_addr.empty() &&
          ::bind(fd_, static_cast<const sockaddr*>(options_.local_addr.data()), options_.local_addr.size()) != 0) {
        fail_current(errno);
        continue;
      }
      if (::connect(fd_, static_cast<const sockaddr*>(a.data()), a.size()) == 0) return false;
      // A Unix socket whose backlog is full says EAGAIN; both mean: writable once it is decided.
      if (errno == EINPROGRESS || errno == EAGAIN || errno == EINTR) {
        loop_.watch(fd_, Events::write, this);
        return true;
      }
      fail_current(errno);
    }
    return false;
  }

  void fail_current(int err) {
    error_ = std::make_exception_ptr(
        std::system_error(err, std::generic_category(), "connect to " + addresses_[next_ - 1].to_string()));
    ::close(fd_);
    fd_ = -1;
  }

  // Delivers the result (a connected fd_ or the last error) and deletes this.
  void finish() {
    std::unique_ptr<Connector> self(this);
    if (fd_ < 0) {
      done_(nullptr, error_);
      return;
    }
    const SocketAddress& a = addresses_[next_ - 1];
    if (options_.nodelay && a.family() != SocketAddress::Family::unix_path) detail::set_nodelay(fd_);
    std::unique_ptr<StreamProtocol> protocol;
    try {
      protocol = factory_();
      if (!protocol) throw std::logic_error("create_connection: the protocol factory returned null");
    } catch (...) {
      ::close(fd_);
      done_(nullptr, std::current_exception());
      return;
    }
    auto* t = detail::SocketTransport::create(loop_, fd_, std::move(protocol), nullptr);
    t->start();
    done_(t, nullptr);
  }

  EventLoop& loop_;
  ProtocolFactory factory_;
  std::vector<SocketAddress> addresses_;
  ConnectCallback done_;
  ConnectOptions options_;
  std::size_t next_ = 0;
  int fd_ = -1;
  std::exception_ptr error_;
};

void start_connector(EventLoop& loop, ProtocolFactory factory, std::vector<SocketAddress> addresses,
                     ConnectCallback done, ConnectOptions options) {
  if (!factory) throw std::invalid_argument("create_connection: no protocol factory");
  if (!done) throw std::invalid_argument("create_connection: no completion callback");
  (new Connector(loop, std::move(factory), std::move(addresses), std::move(done), std::move(options)))->start();
}

}  // namespace

void create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                       ConnectCallback done, ConnectOptions options) {
  if (host.empty()) throw std::invalid_argument("create_connection: empty host");
  start_connector(loop, std::move(factory), resolve_address(host, port, /*passive=*/false), std::move(done),
                  std::move(options));
}

void create_unix_connection(EventLoop& loop, ProtocolFactory factory, std::string_view path, ConnectCallback done) {
  start_connector(loop, std::move(factory), {SocketAddress::unix_path(path)}, std::move(done), {});
}

namespace {
// The callback resolves the future; a connection that arrives after the future was cancelled is not wanted.
ConnectCallback resolve_into(Future<Transport*> f) {
  return [f](Transport* t, std::exception_ptr e) mutable {
    if (e) {
      f.try_set_exception(e);
    } else if (!f.try_set_result(t)) {
      t->abort();
    }
  };
}
}  // namespace

Future<Transport*> create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host,
                                     std::uint16_t port, ConnectOptions options) {
  Future<Transport*> f(loop);
  create_connection(loop, std::move(factory), host, port, resolve_into(f), std::move(options));
  return f;
}

Future<Transport*> create_unix_connection(EventLoop& loop, ProtocolFactory factory, std::string_view path) {
  Future<Transport*> f(loop);
  create_unix_connection(loop, std::move(factory), path, resolve_into(f));
  return f;
}

Transport& connect_accepted_socket(EventLoop& loop, std::unique_ptr<StreamProtocol> protocol, int fd) {
  if (!protocol) throw std::invalid_argument("connect_accepted_socket: the protocol is null");
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    throw std::system_error(errno, std::generic_category(), "connect_accepted_socket: not a socket");
  }
  if (type != SOCK_STREAM) throw std::invalid_argument("connect_accepted_socket: not a stream socket");
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "connect_accepted_socket: fcntl");
  }
  auto* t = detail::SocketTransport::create(loop, fd, std::move(protocol), nullptr);
  t->start();
  return *t;
}

}  // namespace tulipa
