// The coroutine form: WebSocket handles and their awaiters over a CoroState.
#include <ostream>

#include "coro_state.hpp"
#include "tulipa/task.hpp"

namespace tulipa::websocket {

namespace detail {

// Above this many unread messages the connection stops reading (the peer then sees TCP backpressure), as Python
// websockets' max_queue; reading resumes once the reader took them down to a quarter.
constexpr std::size_t kMaxQueue = 16;

void CoroState::push(Message&& m) {
  if (count == ring.size()) {
    std::vector<Message> bigger(ring.empty() ? 4 : ring.size() * 2);
    for (std::size_t i = 0; i < count; ++i) bigger[i] = std::move(ring[(head + i) % ring.size()]);
    ring = std::move(bigger);
    head = 0;
  }
  ring[(head + count) % ring.size()] = std::move(m);
  ++count;
  if (count >= kMaxQueue && conn && conn->transport() && !reading_paused) {
    reading_paused = true;
    conn->transport()->pause_reading();
  }
  if (receiver) receiver->wake();
}

Message CoroState::pop() {
  Message m = std::move(ring[head]);
  head = (head + 1) % ring.size();
  --count;
  if (reading_paused && count <= kMaxQueue / 4 && conn && conn->transport()) {
    reading_paused = false;
    conn->transport()->resume_reading();
  }
  return m;
}

void CoroState::wake_senders() noexcept {
  for (WebSocket::Send* s = senders; s; s = s->next) s->wake();
}

void CoroState::closed_by(std::uint16_t c, std::string_view r) {
  closed = true;
  code = c;
  reason = std::string(r);
  conn = nullptr;
  if (receiver) receiver->wake();
  wake_senders();
  for (WebSocket::Closed* w = closers; w; w = w->next) w->wake();
}

void CoroState::throw_closed() const { throw ConnectionClosed(closed ? code : close_code::abnormal, reason); }

void Bridge::on_open(Connection& ws) {
  s_->conn = static_cast<WsConnection*>(&ws);
  s_->subprotocol = std::string(ws.subprotocol());
  if (start_) {
    auto start = std::move(start_);
    start_ = nullptr;
    start(WebSocket(s_));
  }
}

void Bridge::on_message(Connection&, Message&& message) { s_->push(std::move(message)); }

void Bridge::on_drain(Connection&) { s_->wake_senders(); }

void Bridge::on_close(Connection&, std::uint16_t code, std::string_view reason, std::exception_ptr) {
  s_->closed_by(code, reason);
}

}  // namespace detail

ConnectionClosed::ConnectionClosed(std::uint16_t code, std::string reason)
    : std::runtime_error("websocket: connection closed (" + std::to_string(code) +
                         (reason.empty() ? std::string() : " " + reason) + ")"),
      code_(code),
      reason_(std::move(reason)) {}

WebSocket::WebSocket(detail::CoroState* s) noexcept : s_(s) {
  s_->ref();
  ++s_->handles;
}

WebSocket& WebSocket::operator=(WebSocket&& o) noexcept {
  if (this != &o) {
    WebSocket old(std::move(*this));
    s_ = std::exchange(o.s_, nullptr);
  }
  return *this;
}

WebSocket::~WebSocket() {
  if (!s_) return;
  if (--s_->handles == 0 && s_->conn && s_->conn->is_open()) s_->conn->close(close_code::going_away, {});
  s_->unref();
}

WebSocket::Receive WebSocket::receive() { return Receive(s_); }

WebSocket::Send WebSocket::send(std::string_view text) {
  bool ok = s_->conn && s_->conn->send_text(text);
  return Send(s_, ok);
}

WebSocket::Send WebSocket::send(std::span<const std::byte> data, bool text) {
  bool ok = s_->conn && s_->conn->send(data, text);
  return Send(s_, ok);
}

WebSocket::Send WebSocket::send(const PreparedMessage& message) {
  bool ok = s_->conn && s_->conn->send(message);
  return Send(s_, ok);
}

WebSocket::Closed WebSocket::close(std::uint16_t code, std::string_view reason) {
  if (s_->conn) s_->conn->close(code, reason);
  return Closed(s_);
}

WebSocket::Closed WebSocket::wait_closed() { return Closed(s_); }

void WebSocket::ping(std::span<const std::byte> payload) {
  if (s_->conn) s_->conn->ping(payload);
}

Connection* WebSocket::connection() const noexcept { return s_ ? s_->conn : nullptr; }
std::string_view WebSocket::subprotocol() const noexcept { return s_ ? std::string_view(s_->subprotocol) : ""; }
std::uint16_t WebSocket::close_code() const noexcept { return s_ && s_->closed ? s_->code : 0; }

// --- Receive

WebSocket::Receive::~Receive() {
  if (s_->receiver == this) s_->receiver = nullptr;
}
bool WebSocket::Receive::await_ready() { return s_->count > 0 || s_->closed; }
bool WebSocket::Receive::await_suspend(std::coroutine_handle<> h) {
  if (s_->receiver) throw std::logic_error("websocket: two tasks awaiting receive() at once");
  if (!park(h)) return false;
  s_->receiver = this;
  return true;
}
Message WebSocket::Receive::await_resume() {
  if (s_->receiver == this) s_->receiver = nullptr;
  check_cancelled();
  if (s_->count > 0) return s_->pop();
  s_->throw_closed();
}
void WebSocket::Receive::describe(std::ostream& os) const { os << "WebSocket.receive()"; }
Suspension::Cancel WebSocket::Receive::on_cancel() noexcept {
  s_->receiver = nullptr;
  return Cancel::detached;
}

// --- Send (the drain wait) and Closed: waiters in singly linked lists

namespace {
template <class W>
void unlink(W*& head, W* w) noexcept {
  for (W** p = &head; *p; p = &(*p)->next)
    if (*p == w) {
      *p = w->next;
      w->next = nullptr;
      return;
    }
}
}  // namespace

WebSocket::Send::~Send() {
  if (linked_) unlink(s_->senders, this);
}
bool WebSocket::Send::await_ready() { return !ok_ || s_->closed || !s_->conn || !s_->conn->paused(); }
bool WebSocket::Send::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  next = s_->senders;
  s_->senders = this;
  linked_ = true;
  return true;
}
void WebSocket::Send::await_resume() {
  if (linked_) unlink(s_->senders, this), linked_ = false;
  check_cancelled();
  if (!ok_ || (s_->closed && woken())) s_->throw_closed();
}
void WebSocket::Send::describe(std::ostream& os) const { os << "WebSocket.send() waiting for drain"; }
Suspension::Cancel WebSocket::Send::on_cancel() noexcept {
  if (linked_) unlink(s_->senders, this), linked_ = false;
  return Cancel::detached;
}

WebSocket::Closed::~Closed() {
  if (linked_) unlink(s_->closers, this);
}
bool WebSocket::Closed::await_ready() { return s_->closed; }
bool WebSocket::Closed::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  next = s_->closers;
  s_->closers = this;
  linked_ = true;
  return true;
}
void WebSocket::Closed::await_resume() {
  if (linked_) unlink(s_->closers, this), linked_ = false;
  check_cancelled();
}
void WebSocket::Closed::describe(std::ostream& os) const { os << "WebSocket closing"; }
Suspension::Cancel WebSocket::Closed::on_cancel() noexcept {
  if (linked_) unlink(s_->closers, this), linked_ = false;
  return Cancel::detached;
}

HandlerFactory coroutine_handler(EventLoop& loop, CoroHandler handler) {
  auto h = std::make_shared<CoroHandler>(std::move(handler));
  return [&loop, h](const UpgradeRequest& req) -> std::unique_ptr<Handler> {
    auto* state = new detail::CoroState(loop);
    std::string target(req.target);
    return std::make_unique<detail::Bridge>(state, [&loop, h, target = std::move(target)](WebSocket ws) mutable {
      create_task(loop, (*h)(std::move(ws), std::move(target)));
    });
  };
}

}  // namespace tulipa::websocket
