// Internals of tulipa/threadsafe.hpp (the library's, not part of the contract).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "tulipa/cancel.hpp"
#include "tulipa/clock.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/task.hpp"

namespace tulipa {

template <class T>
class ConcurrentFuture;

namespace detail {

// The state word's layout: the outcome in the low bits, "a thread sleeps on the futex" in bit 2.
struct ConcurrentWord {
  static constexpr std::uint32_t pending = 0, completing = 1, done = 2, cancelled = 3;
  static constexpr std::uint32_t outcome_mask = 3, waiters = 4;
};

// The non-template half: the word, the reference count, the wait and the wake-up (src/threadsafe/).
class ConcurrentCore {
 public:
  ConcurrentCore() noexcept = default;
  ConcurrentCore(const ConcurrentCore&) = delete;
  ConcurrentCore& operator=(const ConcurrentCore&) = delete;

  std::uint32_t outcome() const noexcept {
    return word_.load(std::memory_order_acquire) & ConcurrentWord::outcome_mask;
  }
  bool finished() const noexcept {
    auto o = outcome();
    return o == ConcurrentWord::done || o == ConcurrentWord::cancelled;
  }
  // Blocks until finished, or until `deadline` (TimePoint::max(): no deadline) on the steady clock. Returns finished().
  bool wait_until(TimePoint deadline) const noexcept;
  // pending -> completing: the caller may now write the outcome, then publish(). False if cancelled first.
  bool begin_complete() noexcept;
  // completing -> done, waking the waiters.
  void publish() noexcept;
  // pending -> cancelled, waking the waiters. False if already completing/finished.
  bool try_cancel() noexcept;

  void ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  // True when this was the last reference (the caller then deletes the typed state).
  bool unref() noexcept { return refs_.fetch_sub(1, std::memory_order_acq_rel) == 1; }

  // Loop-thread-only fields: the task running the coroutine while it runs.
  TaskBase* task = nullptr;
  bool task_alive = false;
  EventLoop* loop = nullptr;
  std::exception_ptr error;  // written between begin_complete and publish

 protected:
  ~ConcurrentCore() = default;
  void finish(std::uint32_t outcome) noexcept;  // stores the outcome, wakes sleepers if any

 private:
  mutable std::atomic<std::uint32_t> word_{ConcurrentWord::pending};
  std::atomic<std::uint32_t> refs_{1};
};

template <class T>
struct ConcurrentState final : ConcurrentCore {
  std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
  void unref() noexcept {
    if (ConcurrentCore::unref()) delete this;
  }
};

// The loop side's reference, a parameter of the runner coroutine so that it lives in the coroutine frame: destroying
// the frame (task torn down, loop closed before the task started) fails a still-pending future instead of leaving a
// thread blocked forever.
template <class T>
struct ConcurrentLoopRef {
  ConcurrentState<T>* st;
  explicit ConcurrentLoopRef(ConcurrentState<T>* s) noexcept : st(s) {}
  ConcurrentLoopRef(ConcurrentLoopRef&& o) noexcept : st(std::exchange(o.st, nullptr)) {}
  ~ConcurrentLoopRef() {
    if (!st) return;
    st->task_alive = false;
    if (st->begin_complete()) {
      st->error = std::make_exception_ptr(CancelledError("the event loop closed before the coroutine finished"));
      st->publish();
    }
    st->unref();
  }
};

template <class T>
Coro<void> run_concurrent(Coro<T> coro, ConcurrentLoopRef<T> ref) {
  ConcurrentState<T>* st = ref.st;
  std::exception_ptr error;
  if constexpr (std::is_void_v<T>) {
    try {
      co_await std::move(coro);
    } catch (...) {
      error = std::current_exception();
    }
    if (st->begin_complete()) {
      st->error = std::move(error);
      st->publish();
    }
  } else {
    std::optional<T> value;
    try {
      value.emplace(co_await std::move(coro));
    } catch (...) {
      error = std::current_exception();
    }
    if (st->begin_complete()) {
      if (error) {
        st->error = std::move(error);
      } else {
        st->value = std::move(value);
      }
      st->publish();
    }
    // Cancelled from the other thread meanwhile: `value` dies here, on the loop thread.
  }
}

// Posts a cancellation of the task to the loop (ConcurrentFuture::cancel). Never throws.
void post_task_cancel(ConcurrentCore* st, void (*unref)(ConcurrentCore*) noexcept) noexcept;
// std::logic_error when called on the running loop's own thread for a pending future.
void check_not_loop_thread(const ConcurrentCore& st);

}  // namespace detail
}  // namespace tulipa
