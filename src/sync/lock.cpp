// Lock: asyncio.Lock (3.13). The first waiter stays at the head of the queue while it is woken, so a newcomer that
// finds the lock free but a queue non-empty waits behind it: a released lock goes to the first waiter.
#include <ostream>
#include <stdexcept>

#include "tulipa/sync.hpp"

namespace tulipa {

bool Lock::Acquire::await_ready() noexcept {
  if (!lock_->locked_ && lock_->waiters_.empty()) {
    lock_->locked_ = true;
    return true;
  }
  return false;
}

bool Lock::Acquire::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;  // a cancellation was pending: never queued
  lock_->waiters_.push_back(*this);
  return true;
}

void Lock::Acquire::await_resume() {
  check_cancelled();
  if (woken()) {  // release() woke us, and kept the lock free for us while we stayed first in line
    lock_->waiters_.remove(*this);
    try {
      raise_pending_cancel();  // asyncio: cancelled after the wake-up, we raise here...
    } catch (...) {
      if (!lock_->locked_) lock_->wake_first();  // ...and pass the wake-up on
      throw;
    }
    lock_->locked_ = true;
  }
}

Suspension::Cancel Lock::Acquire::on_cancel() noexcept {
  lock_->waiters_.remove(*this);
  // asyncio: "if the lock is not claimed and a task waits, make sure the one at the head runs".
  if (!lock_->locked_) lock_->wake_first();
  return Cancel::detached;
}

Lock::Acquire::~Acquire() {
  if (!linked) return;
  // Destroyed while still queued: only a torn-down frame gets here. If we had been woken, the wake-up is ours to
  // pass on, or the lock would stay free with tasks waiting for it.
  lock_->waiters_.remove(*this);
  if (!lock_->locked_) lock_->wake_first();
}

void Lock::Acquire::describe(std::ostream& os) const {
  os << "Lock.acquire (" << lock_->waiters_.size() << " waiting)";
}

void Lock::release() {
  if (!locked_) throw std::logic_error("Lock is not acquired");
  locked_ = false;
  wake_first();
}

void Lock::wake_first() noexcept {
  if (auto* first = waiters_.front()) static_cast<Acquire*>(first)->wake();  // idempotent if already woken
}

LockGuard& LockGuard::operator=(LockGuard&& o) noexcept {
  if (this != &o) {
    if (lock_ && lock_->locked()) lock_->release();
    lock_ = std::exchange(o.lock_, nullptr);
  }
  return *this;
}

LockGuard::~LockGuard() {
  // A guard's lock may have been released by hand in between (asyncio allows anyone to release): then nothing to do.
  if (lock_ && lock_->locked()) lock_->release();
}

void LockGuard::release() {
  if (auto* l = std::exchange(lock_, nullptr)) l->release();
}

}  // namespace tulipa
