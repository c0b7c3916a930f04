// Condition: asyncio.Condition (3.13), including its rule that a waiter which fails after it may have been notified
// notifies another one instead.
#include <exception>
#include <ostream>
#include <stdexcept>

#include "tulipa/sync.hpp"

namespace tulipa {

bool Condition::Notified::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  cond_->waiters_.push_back(*this);
  return true;
}

Condition::Notified::~Notified() {
  cond_->waiters_.remove(*this);
  // Notified, then torn down before resuming: the notification would be lost with us.
  if (woken() && !resumed_) cond_->notify_unlocked(1);
}

void Condition::Notified::describe(std::ostream& os) const {
  os << "Condition.wait (" << cond_->waiters_.size() << " waiting)";
}

Coro<void> Condition::wait() {
  if (!locked()) throw std::logic_error("cannot wait on un-acquired lock");
  lock_->release();
  std::exception_ptr error;
  try {
    try {
      co_await Notified(*this);
    } catch (...) {
      error = std::current_exception();  // by the protocol, only a CancelledError
    }
    // The lock must be re-acquired even if the wait was cancelled; a cancellation during the re-acquisition is
    // kept for later too, and the most recent one is raised.
    for (;;) {
      try {
        co_await lock_->acquire();
        break;
      } catch (const CancelledError&) {
        error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
  } catch (...) {
    // We may have been notified and are failing anyway: notify someone else (a spurious wake-up is allowed).
    notify_unlocked(1);
    throw;
  }
}

void Condition::notify(std::size_t n) {
  if (!locked()) throw std::logic_error("cannot notify on un-acquired lock");
  notify_unlocked(n);
}

void Condition::notify_unlocked(std::size_t n) noexcept {
  // Woken waiters leave the list, so every node here is still waiting.
  for (std::size_t i = 0; i < n; ++i) {
    auto* w = waiters_.pop_front();
    if (!w) break;
    static_cast<Notified*>(w)->wake();
  }
}

}  // namespace tulipa
