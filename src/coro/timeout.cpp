// Timeout scopes (asyncio/timeouts.py, 3.12).
#include "tulipa/timeout.hpp"

#include <stdexcept>

namespace tulipa {

Timeout::Timeout(std::optional<TimePoint> when) : task_(current_task()) {
  if (!task_) throw std::logic_error("tulipa::timeout must be used inside a task");
  cancelling_ = task_.cancelling();
  reschedule(when);
}

Timeout::~Timeout() { handle_.cancel(); }

void Timeout::reschedule(std::optional<TimePoint> when) {
  if (state_ != State::entered) throw std::logic_error("tulipa::Timeout: cannot reschedule after it expired or exited");
  when_ = when;
  handle_.cancel();
  if (!when) return;
  EventLoop& loop = task_.get_loop();
  // The callbacks hold `this`: the destructor and exit() cancel the timer first.
  if (*when <= loop.time()) {
    handle_ = loop.call_soon([this] { on_timeout(); });
  } else {
    handle_ = loop.call_at(*when, [this] { on_timeout(); });
  }
}

void Timeout::on_timeout() noexcept {
  try {
    task_.cancel();
  } catch (...) {
  }
  state_ = State::expiring;
}

void Timeout::exit(const std::exception_ptr& body_error) {
  handle_.cancel();
  if (state_ == State::expiring) {
    state_ = State::expired;
    // Our cancel() is withdrawn; if the count is still above its value on entry, someone else cancelled the task
    // too and their CancelledError must go on.
    if (task_.uncancel() <= cancelling_ && body_error && is_cancelled_error(body_error)) throw TimeoutError();
  } else if (state_ == State::entered) {
    state_ = State::exited;
  }
}

}  // namespace tulipa
