// Event: asyncio.Event. set() wakes every waiter in FIFO order (each resumes on a later loop pass).
#include <ostream>

#include "tulipa/sync.hpp"

namespace tulipa {

bool Event::Wait::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  ev_->waiters_.push_back(*this);
  return true;
}

void Event::Wait::describe(std::ostream& os) const { os << "Event.wait (" << ev_->waiters_.size() << " waiting)"; }

void Event::set() noexcept {
  if (set_) return;
  set_ = true;
  while (auto* w = waiters_.pop_front()) static_cast<Wait*>(w)->wake();
}

}  // namespace tulipa
