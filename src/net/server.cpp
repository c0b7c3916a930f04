// Servers: the accept loop and the Server handle.
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#if TULIPA_HAVE_URING
#include <liburing.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "loop/error_context.hpp"
#include "net/resolve.hpp"
#include "net/server_core.hpp"
#include "net/socket_transport.hpp"
#include "net/sockets.hpp"
#include "net/stream_transport.hpp"
#include "net/uring_socket_transport.hpp"
#include "tulipa/net.hpp"

namespace tulipa {
namespace detail {

int system_somaxconn() noexcept {
  static const int value = [] {
    int n = 0;
    if (std::FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "r")) {
      if (std::fscanf(f, "%d", &n) != 1) n = 0;
      std::fclose(f);
    }
    return n > 0 ? n : SOMAXCONN;  // no /proc: the headers' value (4096 since Linux 5.4)
  }();
  return value;
}

ServerCore::ServerCore(EventLoop& l, ProtocolFactory f, ServerOptions o)
    : loop(l), factory(std::move(f)), options(std::move(o)) {
  if (options.backlog <= 0) options.backlog = system_somaxconn();
  if (options.max_accepts_per_wakeup <= 0) options.max_accepts_per_wakeup = std::min(options.backlog, 100);
}

ServerCore::~ServerCore() {
  for (auto& l : listeners) ::close(l->fd);
}

void ServerCore::add_listener(int fd, bool tcp) {
  auto l = std::make_unique<Listener>();
  l->core = this;
  l->fd = fd;
  l->tcp = tcp;
  l->ops = uring_ops(loop);
  listeners.push_back(std::move(l));
}

void ServerCore::start_serving() {
  if (closed) throw std::logic_error("Server: start_serving() after close()");
  if (serving) return;
  serving = true;
  for (auto& l : listeners) {
    if (!l->ops) {
      loop.watch(l->fd, accept_paused ? Events::none : Events::read, l.get());
      l->watched = true;
    } else if (accept_paused) {
      // (paused before serving: resume_accepting() polls it)
    } else {
      l->arm();
    }
  }
}

// Off while a shortage lasts; on again when it may be over. On io_uring, on means readiness until the backlog is
// drained (Listener::poll_instead), whatever the listener did before.
void ServerCore::set_polling(bool on) {
  for (auto& l : listeners) {
    if (!on) {
      l->disarm();
      if (l->watched) loop.update_watch(l->fd, Events::none);
    } else if (l->watched) {
      loop.update_watch(l->fd, Events::read);
    } else {
      l->poll_instead();
    }
  }
}

void ServerCore::close() {
  if (closed) return;
  closed = true;
  retry.cancel();
  for (auto& l : listeners) {
    if (l->watched) loop.unwatch(l->fd);
    if (l->armed) {
      // The accept in flight holds the socket: it closes when the cancelled accept's last completion arrives. It
      // stops listening now (shutdown), so that a connection attempt meanwhile is refused, as after close().
      ::shutdown(l->fd, SHUT_RDWR);
      l->disarm();
      l->orphan = true;
      l.release();
      continue;
    }
    ::close(l->fd);
  }
  listeners.clear();
  serving = false;
  if (!unix_path.empty()) ::unlink(unix_path.c_str());
  maybe_finish();
}

// Called once per accepted connection: the protocol and its transport. A failing factory costs this one
// connection only.
void ServerCore::accepted(int fd) {
  std::unique_ptr<StreamProtocol> protocol;
  try {
    protocol = factory();
    if (!protocol) throw std::logic_error("the protocol factory returned null");
  } catch (...) {
    ::close(fd);
    loop.call_exception_handler(
        detail::error_context("Server: the protocol factory failed; connection refused", std::current_exception()));
    return;
  }
  start_stream_transport(loop, fd, std::move(protocol), this);
}

// Out of descriptors or kernel memory: leave the pending connections in the backlog and look again later. Polling
// the listening socket meanwhile would wake the loop at once, again and again (it stays readable).
// Reported once per shortage: a shortage ends when accept() says EAGAIN (backlog drained, a descriptor to spare).
// Linux takes the descriptor before it looks at the backlog, so at the limit even an empty backlog says EMFILE;
// a success alone does not prove the shortage is over.
void ServerCore::accept_failed(int err) {
  if (!reported) {
    reported = true;
    loop.call_exception_handler(detail::error_context(
        "Server: accept() failed (" + std::string(std::strerror(err)) + "); not accepting for " +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(options.accept_retry_delay).count()) +
            " ms (reported once until the backlog is drained again)",
        std::make_exception_ptr(std::system_error(err, std::generic_category(), "accept")),
        listeners.empty() ? -1 : listeners.front()->fd));
  }
  if (accept_paused) return;
  accept_paused = true;
  set_polling(false);
  retry = loop.call_later(options.accept_retry_delay, [this] { resume_accepting(); });
}

void ServerCore::resume_accepting() {
  accept_paused = false;
  if (serving && !closed) set_polling(true);
}

namespace {
template <class T>
void link(T*& head, T* t) noexcept {
  t->server_prev = nullptr;
  t->server_next = head;
  if (head) head->server_prev = t;
  head = t;
}
template <class T>
void unlink(T*& head, T* t) noexcept {
  if (t->server_prev) {
    t->server_prev->server_next = t->server_next;
  } else {
    head = t->server_next;
  }
  if (t->server_next) t->server_next->server_prev = t->server_prev;
}
}  // namespace

void ServerCore::attach(SocketTransport* t) noexcept {
  link(clients, t);
  ++active;
}

void ServerCore::detach(SocketTransport* t) noexcept {
  unlink(clients, t);
  --active;
  maybe_finish();
}

void ServerCore::attach(UringSocketTransport* t) noexcept {
  link(uring_clients, t);
  ++active;
}

void ServerCore::detach(UringSocketTransport* t) noexcept {
  unlink(uring_clients, t);
  --active;
  maybe_finish();
}

void ServerCore::maybe_finish() {
  if (!closed || active != 0) return;
  for (auto& w : closed_waiters) loop.call_soon(std::move(w));
  closed_waiters.clear();
  if (!handle_alive) delete this;
}

void Listener::on_io(Events) {
  ServerCore* c = core;
  for (int i = 0; i < c->options.max_accepts_per_wakeup; ++i) {
    int fd = ::accept4(this->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        c->reported = false;  // the backlog is drained with a descriptor to spare: any shortage is over
        if (ops) {
          // io_uring after a shortage: back to the multishot accept (if the ring has no SQE to spare, this stays
          // on readiness and tries again at the next wake-up)
          try {
            arm();
            c->loop.unwatch(this->fd);
            watched = false;
          } catch (...) {
          }
        }
        return;
      }
      // The peer gave up before we accepted, or a transient error: the next connection may be fine.
      if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM) continue;
      c->accept_failed(err);
      return;
    }
    if (tcp && c->options.nodelay) set_nodelay(fd);
    c->accepted(fd);
    // The protocol may have closed the server from connection_made.
    if (c->closed) return;
  }
}

#if TULIPA_HAVE_URING
void Listener::arm() {
  if (armed) return;
  io_uring_sqe* s = ops->prepare(this, 0);
  io_uring_prep_multishot_accept(s, fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  armed = true;
}

void Listener::disarm() {
  if (armed) ops->cancel(this, 0);
}

void Listener::poll_instead() {
  core->loop.watch(fd, Events::read, this);
  watched = true;
}

void Listener::on_completion(unsigned, int res, unsigned flags, bool teardown) noexcept {
  if (!(flags & IORING_CQE_F_MORE)) armed = false;
  if (orphan || teardown) {
    if (res >= 0) ::close(res);  // a connection that came in while the accept was being cancelled
    if (orphan && !armed) {
      ops->close_fd(fd);
      delete this;
    }
    return;
  }
  ServerCore* c = core;
  if (res >= 0) {
    if (tcp && c->options.nodelay) set_nodelay(res);
    c->accepted(res);
    if (orphan) {  // the protocol closed the server from connection_made
      if (!armed) {
        ops->close_fd(fd);
        delete this;
      }
      return;
    }
  } else if (res != -ECANCELED && res != -EINTR && res != -ECONNABORTED && res != -EPROTO && res != -EPERM) {
    c->accept_failed(-res);  // pauses accepting (cancels this accept) and retries later
    return;
  }
  if (!armed && !watched && c->serving && !c->closed && !c->accept_paused) {
    try {
      arm();
    } catch (...) {
      c->accept_failed(EAGAIN);  // no SQE to be had: look again after the retry delay
    }
  }
}
#else
void Listener::arm() {}
void Listener::disarm() {}
void Listener::poll_instead() {}
void Listener::on_completion(unsigned, int, unsigned, bool) noexcept {}
#endif

}  // namespace detail

// --- the Server handle

Server::Server(Server&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
Server& Server::operator=(Server&& other) noexcept {
  if (this != &other) {
    this->~Server();
    core_ = std::exchange(other.core_, nullptr);
  }
  return *this;
}

Server::~Server() {
  if (!core_) return;
  detail::ServerCore* c = std::exchange(core_, nullptr);
  c->handle_alive = false;
  if (c->closed && c->active == 0) {
    // maybe_finish already ran (from close or the last detach) while the handle was alive.
    delete c;
    return;
  }
  c->close();  // deletes c when no connection remains
}

static detail::ServerCore& need(detail::ServerCore* c) {
  if (!c) throw std::logic_error("Server: empty handle");
  return *c;
}

EventLoop& Server::get_loop() const { return need(core_).loop; }
void Server::start_serving() { need(core_).start_serving(); }
bool Server::is_serving() const noexcept { return core_ && core_->serving && !core_->closed; }
void Server::close() {
  if (core_) core_->close();
}
void Server::wait_closed(Callback done) {
  detail::ServerCore& c = need(core_);
  if (c.closed && c.active == 0) {
    c.loop.call_soon(std::move(done));
  } else {
    c.closed_waiters.push_back(std::move(done));
  }
}
Future<void> Server::wait_closed() {
  Future<void> f(need(core_).loop);
  wait_closed([f]() mutable { f.try_set_result(); });
  return f;
}
Future<void> Server::serve_forever() {
  start_serving();
  return wait_closed();
}
void Server::close_clients() {
  if (!core_) return;
  for (auto* t = core_->clients; t; t = t->server_next) t->close();
  for (auto* t = core_->uring_clients; t; t = t->server_next) t->close();
}
void Server::abort_clients() {
  if (!core_) return;
  for (auto* t = core_->clients; t; t = t->server_next) t->abort();
  for (auto* t = core_->uring_clients; t; t = t->server_next) t->abort();
}
std::vector<SocketAddress> Server::sockets() const {
  std::vector<SocketAddress> out;
  if (!core_) return out;
  for (auto& l : core_->listeners) out.push_back(detail::local_address(l->fd));
  return out;
}
std::size_t Server::active_connections() const noexcept { return core_ ? core_->active : 0; }

// --- create_server

namespace {
Server finish_server(std::unique_ptr<detail::ServerCore> core) {
  if (core->options.start_serving) core->start_serving();
  return Server(core.release());
}

// Binds and listens on each address (already free of duplicates). Throws, closing what it bound, on the first error.
Server bind_server(EventLoop& loop, ProtocolFactory factory, const std::vector<SocketAddress>& addresses,
                   std::uint16_t port, ServerOptions options) {
  auto core = std::make_unique<detail::ServerCore>(loop, std::move(factory), std::move(options));
  const ServerOptions& o = core->options;
  std::uint16_t chosen = port;
  for (SocketAddress address : addresses) {
    // Port 0 with several addresses ("localhost": 127.0.0.1 and ::1): the first socket picks the port, the others
    // take the same one, so the server has one port whatever the family.
    if (port == 0 && chosen != 0) address = detail::with_port(address, chosen);
    int fd = detail::open_socket(address, SOCK_STREAM);
    core->add_listener(fd, true);  // owned from here: closed by ~ServerCore if anything below throws
    if (o.reuse_address) detail::set_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR on", address);
    if (o.reuse_port) detail::set_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT on", address);
    // An IPv6 socket accepts only IPv6, so that "" can bind 0.0.0.0 and :: side by side (as asyncio does).
    if (address.family() == SocketAddress::Family::ipv6) {
      detail::set_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY on", address);
    }
    if (::bind(fd, static_cast<const sockaddr*>(address.data()), address.size()) != 0) {
      detail::throw_socket_error(errno, "bind to", address);
    }
    if (::listen(fd, o.backlog) != 0) detail::throw_socket_error(errno, "listen on", address);
    if (chosen == 0) chosen = detail::local_address(fd).port();
  }
  return finish_server(std::move(core));
}
}  // namespace

Server create_server(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                     ServerOptions options) {
  if (!factory) throw std::invalid_argument("create_server: no protocol factory");
  return bind_server(loop, std::move(factory), resolve_address(host, port, /*passive=*/true), port, std::move(options));
}

Future<Server> create_server_async(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                   ServerOptions options) {
  if (!factory) throw std::invalid_argument("create_server: no protocol factory");
  Future<Server> out(loop);
  if (auto numeric = detail::numeric_addresses(host, port, /*passive=*/true)) {
    try {
      out.set_result(bind_server(loop, std::move(factory), *numeric, port, std::move(options)));
    } catch (...) {
      out.set_exception(std::current_exception());
    }
    return out;
  }
  Future<std::vector<AddrInfo>> lookup = detail::lookup_stream_addresses(loop, host, port, /*passive=*/true);
  // Cancelling `out` abandons the lookup (skipped if it has not started; its answer dropped if it has).
  out.add_done_callback([lookup](Future<Server>& o) mutable {
    if (o.cancelled()) lookup.cancel();
  });
  lookup.add_done_callback([out, &loop, factory = std::move(factory), host = std::string(host), port,
                            options = std::move(options)](Future<std::vector<AddrInfo>>& answer) mutable {
    if (out.done()) return;  // cancelled while the name was looked up: bind nothing
    try {
      out.set_result(bind_server(loop, std::move(factory), detail::unique_addresses(answer.result(), host), port,
                                 std::move(options)));
    } catch (...) {
      out.set_exception(std::current_exception());
    }
  });
  return out;
}

Server create_unix_server(EventLoop& loop, ProtocolFactory factory, std::string_view path, ServerOptions options) {
  if (!factory) throw std::invalid_argument("create_unix_server: no protocol factory");
  SocketAddress address = SocketAddress::unix_path(path);
  auto core = std::make_unique<detail::ServerCore>(loop, std::move(factory), std::move(options));
  const bool abstract = path.front() == '\0';
  if (!abstract) {
    // A socket file left behind by a server that died is in the way of bind(); anything else at the path is not
    // ours to remove.
    std::string p(path);
    struct stat st{};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        throw std::system_error(EEXIST, std::generic_category(),
                                "create_unix_server: " + p + " exists and is not a socket");
      }
      ::unlink(p.c_str());
    }
  }
  int fd = detail::open_socket(address, SOCK_STREAM);
  core->add_listener(fd, false);
  if (core->options.reuse_port) detail::set_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT on", address);
  if (::bind(fd, static_cast<const sockaddr*>(address.data()), address.size()) != 0) {
    detail::throw_socket_error(errno, "bind to", address);
  }
  if (!abstract) core->unix_path = std::string(path);
  if (::listen(fd, core->options.backlog) != 0) detail::throw_socket_error(errno, "listen on", address);
  return finish_server(std::move(core));
}

}  // namespace tulipa
