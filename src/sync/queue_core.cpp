// QueueCore: the type-independent half of asyncio.Queue (3.13): waiters, task_done/join, shutdown.
#include <algorithm>
#include <ostream>
#include <stdexcept>

#include "tulipa/queue.hpp"

namespace tulipa::detail {

bool QueueCore::Wait::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  list_->push_back(*this);
  return true;
}

void QueueCore::Wait::await_resume() {
  resumed_ = true;
  check_cancelled();
  try {
    raise_pending_cancel();  // asyncio: a waiter cancelled after its wake-up raises here...
  } catch (...) {
    if (can_serve_(*q_)) wake_next(*list_);  // ...and hands the wake-up to the next in line
    throw;
  }
}

QueueCore::Wait::~Wait() {
  list_->remove(*this);
  // Woken (an item arrived / a slot freed) but torn down before running: hand the wake-up to the next in line.
  if (woken() && !resumed_ && can_serve_(*q_)) wake_next(*list_);
}

void QueueCore::Wait::describe(std::ostream& os) const {
  os << what_ << " (" << q_->size() << " items, " << list_->size() << " waiting)";
}

void QueueCore::wake_next(WaitList& list) noexcept {
  // Woken waiters leave the list, so the first node is one still waiting.
  if (auto* w = list.pop_front()) static_cast<Wait*>(w)->wake();
}

void QueueCore::task_done() {
  if (unfinished_ == 0) throw std::logic_error("task_done() called too many times");
  if (--unfinished_ == 0) finished_.set();
}

Event::Wait QueueCore::join() noexcept { return finished_.wait(); }

void QueueCore::check_put() const {
  if (shutdown_) throw QueueShutDown();
  if (full_now()) throw QueueFull();
}

void QueueCore::after_put() noexcept {
  ++unfinished_;
  finished_.clear();
  wake_next(getters_);
}

void QueueCore::check_get() const {
  if (empty_now()) {
    if (shutdown_) throw QueueShutDown();
    throw QueueEmpty();
  }
}

void QueueCore::shutdown_core(bool immediate, std::size_t dropped) noexcept {
  shutdown_ = true;
  if (immediate) {
    unfinished_ -= std::min(dropped, unfinished_);  // dropped items count as done
    if (unfinished_ == 0) finished_.set();          // release every join()
  }
  // Every waiter re-checks: getters raise QueueShutDown once the queue is empty, putters at once.
  while (auto* w = getters_.pop_front()) static_cast<Wait*>(w)->wake();
  while (auto* w = putters_.pop_front()) static_cast<Wait*>(w)->wake();
}

}  // namespace tulipa::detail
