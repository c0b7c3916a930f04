// Semaphore and BoundedSemaphore: asyncio's (3.13). A released unit is handed to the first waiter directly (value
// is not incremented then), so a newcomer cannot overtake the queue, and a woken waiter owns its unit even if its
// task is cancelled before it runs (the cancellation comes at its next suspension point).
#include <ostream>
#include <stdexcept>

#include "tulipa/sync.hpp"

namespace tulipa {

bool Semaphore::Acquire::await_ready() noexcept {
  if (sem_->locked()) return false;
  --sem_->value_;
  return true;
}

bool Semaphore::Acquire::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  sem_->waiters_.push_back(*this);
  return true;
}

void Semaphore::Acquire::await_resume() {
  granted_ = false;  // the unit is the task's now
  check_cancelled();
  try {
    raise_pending_cancel();  // asyncio: cancelled after the hand-over, we raise here...
  } catch (...) {
    sem_->give_back();  // ...and the unit goes to the next waiter
    throw;
  }
}

Semaphore::Acquire::~Acquire() {
  sem_->waiters_.remove(*this);
  if (granted_) sem_->give_back();  // torn down between the hand-over and its resumption: pass the unit on
}

void Semaphore::Acquire::describe(std::ostream& os) const {
  os << "Semaphore.acquire (value " << sem_->value_ << ", " << sem_->waiters_.size() << " waiting)";
}

void Semaphore::give_back() noexcept {
  if (auto* first = waiters_.pop_front()) {
    auto* w = static_cast<Acquire*>(first);
    w->granted_ = true;
    w->notify();
  } else {
    ++value_;
  }
}

void Semaphore::release() { give_back(); }

void BoundedSemaphore::release() {
  // Units handed to woken waiters are in use, so value_ alone counts what is free.
  if (value_ >= bound_) throw std::logic_error("BoundedSemaphore released too many times");
  give_back();
}

}  // namespace tulipa
