// The HTTP server's shared state, its deadline sweep, graceful shutdown, and the Server handle (server.hpp).
#include <algorithm>
#include <ctime>
#include <new>
#include <stdexcept>
#include <string>

#include "server_state.hpp"
#include "tulipa/net.hpp"

namespace tulipa::http {
namespace detail {

void ByteBuffer::append(std::string_view s) {
  if (s.empty()) return;
  const std::size_t need = static_cast<std::size_t>(size_) + s.size();
  if (need > UINT32_MAX) throw std::length_error("http: connection buffer over 4 GiB");
  if (need > capacity_) {
    const std::size_t cap = std::max<std::size_t>({need, static_cast<std::size_t>(capacity_) * 2, 256});
    char* p = static_cast<char*>(std::realloc(data_, cap));
    if (!p) throw std::bad_alloc();
    data_ = p;
    capacity_ = static_cast<std::uint32_t>(std::min<std::size_t>(cap, UINT32_MAX));
  }
  std::memcpy(data_ + size_, s.data(), s.size());
  size_ = static_cast<std::uint32_t>(need);
}

void ByteBuffer::consume(std::size_t n) noexcept {
  if (n >= size_) {
    std::free(data_);
    data_ = nullptr;
    size_ = capacity_ = 0;
    return;
  }
  std::memmove(data_, data_ + n, size_ - n);
  size_ -= static_cast<std::uint32_t>(n);
}

std::string_view DateField::get() noexcept {
  const std::time_t now = std::time(nullptr);
  if (now != second_) {
    second_ = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    size_ = std::strftime(text_, sizeof text_, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
  }
  return {text_, size_};
}

ServerState::ServerState(EventLoop& l, Router r, ServerConfig c) : loop(l), router(std::move(r)), config(std::move(c)) {
  sweep_period = config.sweep;
  if (sweep_period <= Duration::zero()) {
    const Duration shortest = std::min(config.header_timeout, config.keep_alive_timeout);
    sweep_period = std::clamp<Duration>(shortest / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
  }
}

ServerState::~ServerState() {
  sweep_timer.cancel();
  grace_timer.cancel();
}

void ServerState::add(Connection& c) noexcept {
  c.prev = nullptr;
  c.next = first;
  if (first) first->prev = &c;
  first = &c;
  ++connections;
  arm_sweep();
}

void ServerState::remove(Connection& c) noexcept {
  if (c.prev)
    c.prev->next = c.next;
  else
    first = c.next;
  if (c.next) c.next->prev = c.prev;
  c.prev = c.next = nullptr;
  --connections;
  if (connections == 0) {
    sweep_timer.cancel();
    sweep_armed = false;
    if (shutting_down && shutdown_done) {
      grace_timer.cancel();
      shutdown_done.try_set_result();
    }
  }
}

void ServerState::arm_sweep() {
  if (sweep_armed || loop.is_closed()) return;
  sweep_armed = true;
  sweep_timer = loop.call_later(sweep_period, [this] {
    sweep_armed = false;
    sweep();
  });
}

void ServerState::sweep() {
  ref();  // a connection closed here may drop the last other reference
  const TimePoint now = loop.time();
  for (Connection* c = first; c;) {
    Connection* next = c->next;  // check_deadline never unlinks (connection_lost comes later), but be safe
    c->check_deadline(now);
    c = next;
  }
  if (connections) arm_sweep();
  unref();
}

void ServerState::begin_shutdown(Duration grace) {
  shutting_down = true;
  listener.close();
  for (Connection* c = first; c; c = c->next) c->shut_down();
  grace_timer = loop.call_later(grace, [this] { abort_all(); });
}

void ServerState::abort_all() noexcept {
  for (Connection* c = first; c; c = c->next) c->abort();
}

std::unique_ptr<StreamProtocol> ServerState::make_connection(bool encrypted) {
  return std::make_unique<Connection>(*this, encrypted);
}

void ServerState::log(Transport* t, int status, std::string_view what) noexcept {
  try {
    std::string line = "http: ";
    line += std::to_string(status);
    if (t) {
      const SocketAddress peer = t->peername();
      line += " to ";
      line += peer.to_string();
    }
    line += ": ";
    line += what;
    loop.log(line);
  } catch (...) {
  }
}

}  // namespace detail

Server::Server(std::shared_ptr<detail::ServerState> state) noexcept : state_(std::move(state)) {}
Server::Server(Server&&) noexcept = default;
Server& Server::operator=(Server&& o) noexcept {
  Server(std::move(o)).state_.swap(state_);
  return *this;
}

Server::~Server() {
  if (!state_) return;
  state_->listener.close();
  if (!state_->loop.is_closed()) state_->abort_all();
}

std::vector<SocketAddress> Server::sockets() const {
  return state_->listener ? state_->listener.sockets() : std::vector<SocketAddress>{};
}

std::size_t Server::active_connections() const noexcept { return state_->connections; }

ProtocolFactory Server::factory(bool encrypted) const {
  // A connection made after shutdown() began closes at once (connection_made), as a factory may not refuse.
  return [ref = detail::StateRef(state_.get()), encrypted]() -> std::unique_ptr<StreamProtocol> {
    return ref->make_connection(encrypted);
  };
}

Future<void> Server::shutdown(Duration grace) {
  detail::ServerState& s = *state_;
  if (!s.shutdown_done) {
    s.shutdown_done = Future<void>(s.loop);
    s.begin_shutdown(grace);
    if (s.connections == 0) {
      s.grace_timer.cancel();
      s.shutdown_done.set_result();
    }
  }
  return s.shutdown_done;
}

namespace {
std::shared_ptr<detail::ServerState> make_state(EventLoop& loop, Router router, ServerConfig config) {
  auto* raw = new detail::ServerState(loop, std::move(router), std::move(config));
  raw->ref();
  // The handle's reference goes with the shared_ptr's deleter; connections and factories count on their own.
  return std::shared_ptr<detail::ServerState>(raw, [](detail::ServerState* s) { s->unref(); });
}
}  // namespace

Server make_server(EventLoop& loop, Router router, ServerConfig config) {
  return Server(make_state(loop, std::move(router), std::move(config)));
}

Server serve(EventLoop& loop, Router router, std::string_view host, std::uint16_t port, ServerConfig config) {
  Server server = make_server(loop, std::move(router), std::move(config));
  // The state owns its listener, so the listener's factory holds no counted reference (that would be a cycle).
  detail::ServerState* state = server.state_.get();
  state->listener = create_server(
      loop, [state]() -> std::unique_ptr<StreamProtocol> { return state->make_connection(); }, host, port,
      state->config.listen);
  return server;
}

}  // namespace tulipa::http
