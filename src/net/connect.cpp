// Outgoing connections: the host name looked up on the DNS pool when it is not numeric, then a non-blocking
// connect() per candidate address, then a transport for the first that works.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "net/resolve.hpp"
#include "net/sockets.hpp"
#include "net/stream_transport.hpp"
#include "tulipa/net.hpp"

namespace tulipa {
namespace detail {

// One create_connection, from the call until `done` ran or cancel() stopped it. Owned by shared pointers: its own
// `self_` while it waits for the loop (the loop's watch and the DNS pool's answer hold no reference), plus the
// callbacks it queued; a ConnectHandle only observes it (weak).
class Connector final : public IoWatcher, public ConnectAttempt, public std::enable_shared_from_this<Connector> {
 public:
  enum class State : std::uint8_t { idle, resolving, connecting, finishing, done, cancelled };

  Connector(EventLoop& loop, ProtocolFactory factory, ConnectCallback done, Future<Transport*> future,
            ConnectOptions options)
      : loop_(loop),
        factory_(std::move(factory)),
        done_(std::move(done)),
        future_(std::move(future)),
        options_(std::move(options)) {}

  // Known addresses: starts the first attempt. Never reports from here: a result known at once is delivered on
  // the next pass.
  void start(std::vector<SocketAddress> addresses) {
    self_ = shared_from_this();
    addresses_ = std::move(addresses);
    state_ = State::connecting;
    if (try_next()) return;
    state_ = State::finishing;
    loop_.call_soon([self = shared_from_this()] {
      if (self->state_ == State::finishing) self->finish();
    });
  }

  // A host name: getaddrinfo on the DNS pool first.
  void start_lookup(std::string_view host, std::uint16_t port) {
    self_ = shared_from_this();
    host_ = std::string(host);
    state_ = State::resolving;
    lookup_ = lookup_stream_addresses(loop_, host, port, /*passive=*/false);
    lookup_.add_done_callback([self = shared_from_this()](Future<std::vector<AddrInfo>>& f) { self->resolved(f); });
  }

  bool pending() const noexcept override { return state_ != State::done && state_ != State::cancelled; }

  bool cancel() noexcept override {
    if (!pending()) return false;
    state_ = State::cancelled;
    if (lookup_) {
      lookup_.cancel();  // the answer is dropped when it arrives; our done callback then sees `cancelled`
      lookup_ = nullptr;
    }
    close_socket();
    // The user's callables go now, not when the last queued callback lets go of this object.
    ProtocolFactory factory = std::move(factory_);
    ConnectCallback done = std::move(done_);
    Future<Transport*> future = std::move(future_);
    std::shared_ptr<Connector> self = std::move(self_);  // may be the last reference: `self` outlives the members
    factory = nullptr;
    done = nullptr;
    future = nullptr;
    return true;
  }

  void on_io(Events) override {
    loop_.unwatch(fd_);
    watching_ = false;
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
  // The lookup's answer, as a loop callback.
  void resolved(Future<std::vector<AddrInfo>>& f) {
    lookup_ = nullptr;
    if (state_ != State::resolving) return;  // cancelled meanwhile
    try {
      addresses_ = unique_addresses(f.result(), host_);
    } catch (...) {
      error_ = std::current_exception();  // GaiError: the message names the host
      finish();
      return;
    }
    state_ = State::connecting;
    if (!try_next()) finish();
  }

  // Tries addresses until one is connecting (true: wait for writability) or connected/out of addresses (false).
  bool try_next() {
    while (next_ < addresses_.size()) {
      const SocketAddress& a = addresses_[next_++];
      try {
        fd_ = open_socket(a, SOCK_STREAM);
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
        watching_ = true;
        return true;
      }
      fail_current(errno);
    }
    return false;
  }

  void fail_current(int err) {
    error_ = std::make_exception_ptr(
        std::system_error(err, std::generic_category(), "connect to " + addresses_[next_ - 1].to_string()));
    close_socket();
  }

  void close_socket() noexcept {
    if (fd_ < 0) return;
    if (watching_) loop_.unwatch(fd_);
    watching_ = false;
    ::close(fd_);
    fd_ = -1;
  }

  // Delivers the result (a connected fd_ or the last error). The Future form's future may have been cancelled
  // since: then the socket is closed and the factory not called.
  void finish() {
    std::shared_ptr<Connector> self = std::move(self_);  // alive until we return, whatever the callbacks do
    state_ = State::done;
    ProtocolFactory factory = std::move(factory_);
    ConnectCallback done = std::move(done_);
    Future<Transport*> future = std::move(future_);
    if (future && future.done()) {
      close_socket();
      return;
    }
    auto deliver = [&](Transport* t, std::exception_ptr e) {
      if (!future) {
        done(t, std::move(e));
      } else if (e) {
        future.try_set_exception(std::move(e));
      } else {
        future.try_set_result(t);
      }
    };
    if (fd_ < 0) {
      deliver(nullptr, error_);
      return;
    }
    const int fd = std::exchange(fd_, -1);
    const SocketAddress& a = addresses_[next_ - 1];
    if (options_.nodelay && a.family() != SocketAddress::Family::unix_path) set_nodelay(fd);
    std::unique_ptr<StreamProtocol> protocol;
    try {
      protocol = factory();
      if (!protocol) throw std::logic_error("create_connection: the protocol factory returned null");
    } catch (...) {
      ::close(fd);
      deliver(nullptr, std::current_exception());
      return;
    }
    deliver(start_stream_transport(loop_, fd, std::move(protocol), nullptr), nullptr);
  }

  EventLoop& loop_;
  ProtocolFactory factory_;
  ConnectCallback done_;       // the callback form's
  Future<Transport*> future_;  // the Future form's (then done_ is empty)
  ConnectOptions options_;
  std::string host_;  // a name being looked up (for the error message)
  Future<std::vector<AddrInfo>> lookup_{nullptr};
  std::vector<SocketAddress> addresses_;
  std::size_t next_ = 0;
  int fd_ = -1;
  bool watching_ = false;
  State state_ = State::idle;
  std::exception_ptr error_;
  std::shared_ptr<Connector> self_;
};

}  // namespace detail

bool ConnectHandle::cancel() noexcept {
  std::shared_ptr<detail::ConnectAttempt> c = c_.lock();  // alive through cancel(), which may drop its owners
  return c && c->cancel();
}

bool ConnectHandle::pending() const noexcept {
  std::shared_ptr<detail::ConnectAttempt> c = c_.lock();
  return c && c->pending();
}

namespace {

void check_arguments(const ProtocolFactory& factory, std::string_view host) {
  if (!factory) throw std::invalid_argument("create_connection: no protocol factory");
  if (host.empty()) throw std::invalid_argument("create_connection: empty host");
}

ConnectHandle start_tcp(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                        ConnectCallback done, Future<Transport*> future, ConnectOptions options) {
  auto c = std::make_shared<detail::Connector>(loop, std::move(factory), std::move(done), std::move(future),
                                               std::move(options));
  if (auto addresses = detail::numeric_addresses(host, port, /*passive=*/false)) {
    c->start(std::move(*addresses));  // numeric: no lookup, no thread hop
  } else {
    c->start_lookup(host, port);
  }
  return ConnectHandle(c);
}

ConnectHandle start_unix(EventLoop& loop, ProtocolFactory factory, std::string_view path, ConnectCallback done,
                         Future<Transport*> future) {
  if (!factory) throw std::invalid_argument("create_unix_connection: no protocol factory");
  SocketAddress address = SocketAddress::unix_path(path);
  auto c = std::make_shared<detail::Connector>(loop, std::move(factory), std::move(done), std::move(future),
                                               ConnectOptions{});
  c->start({address});
  return ConnectHandle(c);
}

// Cancelling the future cancels the attempt (on the next pass: done callbacks run through the loop; the connector
// itself also checks the future before it calls the factory).
Future<Transport*> cancel_with_future(Future<Transport*> f, ConnectHandle h) {
  f.add_done_callback([h](Future<Transport*>& done) mutable {
    if (done.cancelled()) h.cancel();
  });
  return f;
}

}  // namespace

ConnectHandle create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                ConnectCallback done, ConnectOptions options) {
  check_arguments(factory, host);
  if (!done) throw std::invalid_argument("create_connection: no completion callback");
  return start_tcp(loop, std::move(factory), host, port, std::move(done), nullptr, std::move(options));
}

ConnectHandle create_unix_connection(EventLoop& loop, ProtocolFactory factory, std::string_view path,
                                     ConnectCallback done) {
  if (!done) throw std::invalid_argument("create_unix_connection: no completion callback");
  return start_unix(loop, std::move(factory), path, std::move(done), nullptr);
}

Future<Transport*> create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host,
                                     std::uint16_t port, ConnectOptions options) {
  check_arguments(factory, host);
  Future<Transport*> f(loop);
  return cancel_with_future(f, start_tcp(loop, std::move(factory), host, port, nullptr, f, std::move(options)));
}

Future<Transport*> create_unix_connection(EventLoop& loop, ProtocolFactory factory, std::string_view path) {
  Future<Transport*> f(loop);
  return cancel_with_future(f, start_unix(loop, std::move(factory), path, nullptr, f));
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
  return *detail::start_stream_transport(loop, fd, std::move(protocol), nullptr);
}

}  // namespace tulipa
