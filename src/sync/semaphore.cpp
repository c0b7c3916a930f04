// Semaphore and BoundedSemaphore: asyncio's (3.13). A released unit is handed to the first waiter directly and
// stays reserved for it until it runs (locked() stays true), so a newcomer cannot overtake the queue; a woken
// waiter owns its unit even if its task is cancelled before it runs (then it passes the unit on).
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
  if (granted_) {  // the unit is the task's now
    granted_ = false;
    --sem_->reserved_;
  }
  check_cancelled();
  try {
    raise_pending_cancel();  // asyncio: cancelled after the hand-over, we raise here...
  } catch (...) {
    sem_->give_back();  // ...and the unit goes to the next waiter
    throw;
  }
  // Units released while ours was reserved waited for us (FIFO): hand them on now (asyncio's acquire does too).
  sem_->wake_waiters();
}

Semaphore::Acquire::~Acquire() {
  sem_->waiters_.remove(*this);
  if (granted_) {  // torn down between the hand-over and its resumption: pass the unit on
    granted_ = false;
    --sem_->reserved_;
    sem_->give_back();
  }
}

void Semaphore::Acquire::describe(std::ostream& os) const {
  os << "Semaphore.acquire (value " << sem_->value_ << ", " << sem_->waiters_.size() << " waiting)";
}

void Semaphore::give_back() noexcept {
  ++value_;
  wake_waiters();
}

void Semaphore::wake_waiters() noexcept {
  while (value_ > 0) {
    auto* first = waiters_.pop_front();
    if (!first) return;
    --value_;
    auto* w = static_cast<Acquire*>(first);
    w->granted_ = true;
    ++reserved_;
    w->wake();
  }
}

void Semaphore::release() { give_back(); }

void BoundedSemaphore::release() {
  // Units handed to woken waiters are in use, so value_ alone counts what is free.
  if (value_ >= bound_) throw std::logic_error("BoundedSemaphore released too many times");
  give_back();
}

}  // namespace tulipa
