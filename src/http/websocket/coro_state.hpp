// The coroutine form's per-connection state: what WebSocket handles and the connection's Bridge handler share.
#pragma once

#include <string>
#include <vector>

#include "connection.hpp"

namespace tulipa::websocket::detail {

class CoroState {
 public:
  explicit CoroState(EventLoop& loop) noexcept : loop(&loop) {}
  void ref() noexcept { ++refs; }
  void unref() noexcept {
    if (--refs == 0) delete this;
  }

  void push(Message&& m);
  Message pop();
  void closed_by(std::uint16_t code, std::string_view reason);
  void wake_senders() noexcept;
  [[noreturn]] void throw_closed() const;

  EventLoop* loop;
  WsConnection* conn = nullptr;  // while open (set by the Bridge's on_open, cleared by its on_close)
  int refs = 0;
  int handles = 0;
  std::vector<Message> ring;  // received messages not yet taken: a ring of `count` from `head`
  std::size_t head = 0;
  std::size_t count = 0;
  WebSocket::Receive* receiver = nullptr;
  WebSocket::Send* senders = nullptr;
  WebSocket::Closed* closers = nullptr;
  bool closed = false;
  bool reading_paused = false;
  std::uint16_t code = 0;
  std::string reason;
  std::string subprotocol;
};

// The connection's handler in the coroutine form. `on_open_task` (server) starts the connection's task.
class Bridge final : public Handler {
 public:
  Bridge(CoroState* s, std::function<void(WebSocket)> on_open_task = {}) : s_(s), start_(std::move(on_open_task)) {
    s_->ref();
  }
  ~Bridge() override { s_->unref(); }
  void on_open(Connection& ws) override;
  void on_message(Connection& ws, Message&& message) override;
  void on_drain(Connection& ws) override;
  void on_close(Connection& ws, std::uint16_t code, std::string_view reason, std::exception_ptr error) override;

 private:
  CoroState* s_;
  std::function<void(WebSocket)> start_;
};

}  // namespace tulipa::websocket::detail
