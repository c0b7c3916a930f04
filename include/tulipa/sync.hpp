// Synchronisation primitives for tasks on one loop: asyncio's Lock, Event, Condition, Semaphore, BoundedSemaphore
// and Barrier (3.13 semantics). They are not thread-safe: use them from the loop's thread only (to hand work to
// another thread, see to_thread.hpp; to reach a loop from another thread, loop.call_soon_threadsafe).
//
//   tulipa::Lock lock;
//   { auto held = co_await lock.scoped(); ... }       // or co_await lock.acquire(); ...; lock.release();
//
// Waiting costs no allocation: each wait's list node lives inside the awaiter, in the waiting coroutine's frame
// (intrusive FIFO lists). Lock, Event and Semaphore waits are single awaiters; Condition::wait and Barrier::wait are
// small coroutines (their frames come from the frame allocator's free lists).
//
// Fairness: waiters are served first-in first-out. Cancellation (the protocol in coro.hpp, with asyncio's rule):
// a waiter cancelled while it waits leaves the queue at once and raises CancelledError. A waiter cancelled after it
// was woken but before its task ran (handed the lock, a semaphore unit, a notification) also raises CancelledError at
// that await, and first passes what it was given to the next waiter (Suspension::raise_pending_cancel), as asyncio
// 3.13 does. So a cancellation never loses a wake-up. A waiter whose coroutine frame is destroyed while woken but not
// yet resumed (a task torn down by close_tasks) passes it on too.
//
// Lifetimes: a primitive must outlive every wait on it (the awaiters point into it).
#pragma once

#include <coroutine>
#include <cstddef>
#include <iosfwd>
#include <stdexcept>
#include <utility>

#include "tulipa/coro.hpp"
#include "tulipa/detail/sync.hpp"

namespace tulipa {

// ------------------------------------------------------------------------------------------------------------ Lock
class Lock;

// Releases the lock it holds when destroyed (asyncio's `async with lock:`). Move-only.
class [[nodiscard]] LockGuard {
 public:
  LockGuard() noexcept = default;
  explicit LockGuard(Lock& lock) noexcept : lock_(&lock) {}
  LockGuard(LockGuard&& o) noexcept : lock_(std::exchange(o.lock_, nullptr)) {}
  LockGuard& operator=(LockGuard&& o) noexcept;
  ~LockGuard();
  // Releases now (idempotent).
  void release();
  bool owns_lock() const noexcept { return lock_ != nullptr; }

 private:
  Lock* lock_ = nullptr;
};

// asyncio.Lock: not reentrant, released by anyone (no owner check, as asyncio), FIFO.
// A released lock goes to the first waiter: locked() reads false until that waiter's task runs, but no newcomer can
// take the lock in between (it queues behind).
class Lock {
 public:
  Lock() noexcept = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  class [[nodiscard]] Acquire : public detail::Waiter {
   public:
    explicit Acquire(Lock& lock) noexcept : lock_(&lock) {}
    Acquire(Acquire&&) noexcept = default;
    ~Acquire();
    bool await_ready() noexcept;
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume();
    void describe(std::ostream& os) const override;

   protected:
    Cancel on_cancel() noexcept override;
    Lock* lock_;
  };
  class [[nodiscard]] Scoped final : public Acquire {
   public:
    using Acquire::Acquire;
    LockGuard await_resume() {
      Acquire::await_resume();
      return LockGuard(*lock_);
    }
  };

  // co_await lock.acquire(): returns once this task holds the lock.
  Acquire acquire() noexcept { return Acquire(*this); }
  // co_await lock.scoped(): the same, returning a LockGuard that releases it.
  Scoped scoped() noexcept { return Scoped(*this); }
  // Throws std::logic_error("Lock is not acquired") when unlocked.
  void release();
  bool locked() const noexcept { return locked_; }
  // Tasks waiting (including one woken and about to take the lock).
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  void wake_first() noexcept;
  detail::WaitList waiters_;
  bool locked_ = false;
};

// ----------------------------------------------------------------------------------------------------------- Event
// asyncio.Event: set() wakes every waiter; wait() returns at once while set.
class Event {
 public:
  Event() noexcept = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  class [[nodiscard]] Wait final : public detail::Waiter {
   public:
    explicit Wait(Event& ev) noexcept : ev_(&ev) {}
    Wait(Wait&&) noexcept = default;
    ~Wait() { ev_->waiters_.remove(*this); }
    bool await_ready() const noexcept { return ev_->set_; }
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() const {
      check_cancelled();
      raise_pending_cancel();  // asyncio: a cancel() after set() still raises here (the event stays set)
    }
    void describe(std::ostream& os) const override;

   private:
    Cancel on_cancel() noexcept override {
      ev_->waiters_.remove(*this);
      return Cancel::detached;
    }
    Event* ev_;
  };

  Wait wait() noexcept { return Wait(*this); }
  void set() noexcept;
  void clear() noexcept { set_ = false; }
  bool is_set() const noexcept { return set_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  detail::WaitList waiters_;
  bool set_ = false;
};

// ------------------------------------------------------------------------------------------------------- Condition
// asyncio.Condition: wait() releases the lock, waits for notify(), and re-acquires the lock before returning, even
// when cancelled (the CancelledError is raised after re-acquiring). A notified waiter that fails after all (cancelled
// after the notification, or while re-acquiring) passes the notification on (notify(1)), as 3.13 does: a spurious
// wake-up, never a lost one.
class Condition {
 public:
  // With a lock of its own.
  Condition() noexcept : lock_(&own_lock_) {}
  // Sharing `lock`, which must outlive the condition.
  explicit Condition(Lock& lock) noexcept : lock_(&lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  Lock::Acquire acquire() noexcept { return lock_->acquire(); }
  Lock::Scoped scoped() noexcept { return lock_->scoped(); }
  void release() { lock_->release(); }
  bool locked() const noexcept { return lock_->locked(); }
  Lock& lock() const noexcept { return *lock_; }

  // Throws std::logic_error if the lock is not held.
  Coro<void> wait();
  // Waits until pred() is true (checked first, and after each wake-up) and returns it.
  template <class Pred>
  Coro<bool> wait_for(Pred pred) {
    bool result = static_cast<bool>(pred());
    while (!result) {
      co_await wait();
      result = static_cast<bool>(pred());
    }
    co_return result;
  }
  // Wakes up to n waiters (not those already woken). Throws std::logic_error if the lock is not held.
  void notify(std::size_t n = 1);
  void notify_all() { notify(static_cast<std::size_t>(-1)); }
  std::size_t waiting() const noexcept { return waiters_.size(); }

  class [[nodiscard]] Notified final : public detail::Waiter {
   public:
    explicit Notified(Condition& c) noexcept : cond_(&c) {}
    Notified(Notified&&) noexcept = default;
    ~Notified();
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() {
      resumed_ = true;
      check_cancelled();
      raise_pending_cancel();  // asyncio: a notified waiter cancelled before it ran raises; wait() passes it on
    }
    void describe(std::ostream& os) const override;

   private:
    Cancel on_cancel() noexcept override {
      cond_->waiters_.remove(*this);
      return Cancel::detached;
    }
    Condition* cond_;
    bool resumed_ = false;
  };

 private:
  void notify_unlocked(std::size_t n) noexcept;
  Lock own_lock_;
  Lock* lock_;
  detail::WaitList waiters_;
};

// ------------------------------------------------------------------------------------------------------- Semaphore
// asyncio.Semaphore: acquire() takes one unit (waiting FIFO while none is free, or while others already wait),
// release() returns one. A unit released while tasks wait goes straight to the first of them.
class Semaphore {
 public:
  explicit Semaphore(std::size_t value = 1) noexcept : value_(value) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  class [[nodiscard]] Acquire final : public detail::Waiter {
   public:
    explicit Acquire(Semaphore& s) noexcept : sem_(&s) {}
    Acquire(Acquire&&) noexcept = default;
    ~Acquire();
    bool await_ready() noexcept;
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume();
    void describe(std::ostream& os) const override;

   private:
    friend class Semaphore;
    Cancel on_cancel() noexcept override {
      sem_->waiters_.remove(*this);
      return Cancel::detached;
    }
    Semaphore* sem_;
    bool granted_ = false;  // a unit was handed to this waiter and it has not resumed yet
  };

  Acquire acquire() noexcept { return Acquire(*this); }
  void release();
  // True when acquire() would wait: no unit free, or waiters queued, or a unit handed to a woken waiter that has not
  // run yet (it stays reserved, so a newcomer cannot overtake the queue: asyncio's FIFO).
  bool locked() const noexcept { return value_ == 0 || !waiters_.empty() || reserved_ > 0; }
  std::size_t value() const noexcept { return value_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

 protected:
  void give_back() noexcept;  // one unit returns: to the first waiter if any
  std::size_t value_;

 private:
  // Hands free units to the queued waiters, first come first served, while there are both.
  void wake_waiters() noexcept;
  detail::WaitList waiters_;
  std::size_t reserved_ = 0;  // units handed to woken waiters that have not resumed yet
};

// asyncio.BoundedSemaphore: release() beyond the initial value throws std::logic_error (Python's ValueError).
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::size_t value = 1) noexcept : Semaphore(value), bound_(value) {}
  void release();

 private:
  std::size_t bound_;
};

// --------------------------------------------------------------------------------------------------------- Barrier
// Raised by Barrier::wait when the barrier is aborted or reset while waiting, or was broken before.
class BrokenBarrierError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// asyncio.Barrier (3.11+): `parties` tasks meet; each wait() returns its arrival index (0 .. parties-1) once the
// last one arrived. A waiter cancelled while it waits just leaves (the barrier then needs another party); abort()
// breaks the barrier (every waiter and every later wait() raise BrokenBarrierError); reset() breaks the current
// waiters and returns the barrier to its empty state.
class Barrier {
 public:
  // Throws std::invalid_argument if parties < 1.
  explicit Barrier(std::size_t parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  Coro<std::size_t> wait();
  Coro<void> reset();
  Coro<void> abort();

  std::size_t parties() const noexcept { return parties_; }
  // Tasks waiting for the barrier to fill.
  std::size_t n_waiting() const noexcept { return state_ == State::filling ? count_ : 0; }
  bool broken() const noexcept { return state_ == State::broken; }

 private:
  enum class State { filling, draining, resetting, broken };
  Coro<void> block();
  Coro<void> wait_released();
  void exit() noexcept;

  Condition cond_;
  std::size_t parties_;
  State state_ = State::filling;
  std::size_t count_ = 0;
};

}  // namespace tulipa
