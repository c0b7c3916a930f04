// Coroutines in tulipa: Coro<T> (a lazy coroutine, like a Python coroutine object) and the suspension/cancellation
// protocol every awaitable of the library follows. (How frames are allocated and linked: tulipa/detail/.)
//
// A coroutine function returns Coro<T>. Nothing runs until it is awaited (`co_await f()`, which runs it inside the
// awaiting task by symmetric transfer: no scheduling, no allocation beyond its frame) or wrapped in a task
// (create_task, in task.hpp), which the loop then drives step by step. Coro<T> is move-only and owns its frame.
// Parameters are copied into the frame, but a lambda coroutine only borrows its closure: a capturing lambda must
// outlive the coroutine (create_task(callable) moves the callable into the task for exactly that reason).
//
// ============================================ THE CANCELLATION PROTOCOL ============================================
// Every awaitable in the library that suspends a task (sleep, futures, tasks, gather, locks, queues, socket
// operations...) is a "leaf awaiter": a class deriving from tulipa::Suspension. The task always knows its current
// leaf, which is how Task::cancel() delivers a CancelledError at the exact point where the task waits.
//
//   struct MyAwaiter : tulipa::Suspension {
//     bool await_ready() { return thing_is_ready(); }            // no suspension => no cancellation (as asyncio)
//     bool await_suspend(std::coroutine_handle<> h) {
//       if (!park(h)) return false;   // 1. park FIRST. false: a cancellation is pending; do not register; the
//                                     //    coroutine goes straight on to await_resume, which throws.
//       register_in_wait_list(this);  // 2. only then register with the thing waited on.
//       return true;
//     }
//     T await_resume() {
//       check_cancelled();            // 3. throws CancelledError(msg) if this wait was cancelled.
//       return take_result();
//     }
//     // When the thing happens (loop thread only): unregister, then call wake(). The task resumes on a later loop
//     // pass (call_soon: fair, no recursion). wake() is idempotent and safe after a cancellation.
//     void on_ready() { unregister(this); wake(); }
//     // The hook. Called by Task::cancel() only while parked and not yet woken. Choose one:
//     //   Cancel::detached  - you unregistered from the thing waited on (it can no longer call wake()); the task
//     //                       resumes on its own and check_cancelled() throws. (sleep, lock/queue waiters, wait())
//     //   Cancel::forwarded - you passed the cancellation on (cancelled the awaited future/task/children); the task
//     //                       stays parked until that completes and wakes it, as asyncio does when a task awaiting a
//     //                       future or task is cancelled. await_resume then reports what the awaited thing ended
//     //                       with (normally a CancelledError).
//     //   Cancel::refused   - you cannot stop now; the cancellation stays pending and is delivered at the task's
//     //                       next suspension point (park() returns false there).
//     Cancel on_cancel() noexcept override { unregister(this); return Cancel::detached; }
//     void describe(std::ostream& os) const override { os << "MyThing.wait()"; }  // one line, for await chains
//     ~MyAwaiter() { unregister(this); }  // 4. the frame can be destroyed while suspended: leave nothing behind.
//     MyAwaiter(MyAwaiter&&) = default;   // 5. movable before it suspends (g++ 12: docs/coroutines.md).
//   };
//
// Rules: once woken, the awaiter's result wins over a later cancel() (no lost item, no lost lock: a cancel()
// arriving between wake() and the task's resumption is delivered at the next suspension point instead). An awaiter
// that can hand its result on may opt in to asyncio's rule (raise at this await) with raise_pending_cancel(). The
// task's cancel message is task()->cancel_message(). Awaiters are loop-thread objects; to complete one from another
// thread, go through EventLoop::call_soon_threadsafe.
// A coroutine may await foreign awaitables that do not derive from Suspension; they work, but the task cannot be
// cancelled while suspended there and current_task() is not set when they resume it.
// ===================================================================================================================
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iosfwd>
#include <memory>
#include <optional>
#include <source_location>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "tulipa/cancel.hpp"
#include "tulipa/detail/promise.hpp"  // the promise, the frame allocator, TaskBase

namespace tulipa {

class EventLoop;
class Suspension;
template <class T = void>
class Coro;

// A lazy coroutine returning T. Move-only; destroying one that never ran destroys its frame without running it.
// Await it once (`co_await f()` or `co_await std::move(c)`), or give it to create_task().
template <class T>
class [[nodiscard]] Coro {
 public:
  using promise_type = detail::CoroPromise<T>;
  using value_type = T;
  using Handle = std::coroutine_handle<promise_type>;

  Coro() noexcept = default;
  explicit Coro(Handle h) noexcept : h_(h) {}
  Coro(Coro&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Coro& operator=(Coro&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Coro(const Coro&) = delete;
  Coro& operator=(const Coro&) = delete;
  ~Coro() { reset(); }

  // True while this object owns a coroutine that has not been awaited to completion.
  bool valid() const noexcept { return h_ && !h_.done(); }
  explicit operator bool() const noexcept { return valid(); }
  Handle release() noexcept { return std::exchange(h_, {}); }

  struct Awaiter {
    Handle h;
    bool await_ready() const {
      if (!h || h.done()) throw std::logic_error("tulipa::Coro awaited twice (or empty)");
      return false;
    }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
      detail::link_child(h.promise(), parent, parent);
      return h;
    }
    T await_resume() { return h.promise().take(); }
  };
  Awaiter operator co_await() & noexcept { return Awaiter{h_}; }
  Awaiter operator co_await() && noexcept { return Awaiter{h_}; }

 private:
  void reset() noexcept {
    if (h_) std::exchange(h_, {}).destroy();
  }
  Handle h_;
};

namespace detail {
template <class T>
Coro<T> CoroPromise<T>::get_return_object() noexcept {
  return Coro<T>(std::coroutine_handle<CoroPromise<T>>::from_promise(*this));
}
inline Coro<void> CoroPromise<void>::get_return_object() noexcept {
  return Coro<void>(std::coroutine_handle<CoroPromise<void>>::from_promise(*this));
}
}  // namespace detail

// Base of every leaf awaiter: see THE CANCELLATION PROTOCOL at the top of this file.
class Suspension {
 public:
  enum class Cancel { detached, forwarded, refused };

  Suspension() noexcept = default;
  // Awaiters may be moved before they suspend (g++ 12 moves them once: docs/coroutines.md), never after.
  Suspension(Suspension&&) noexcept {}
  Suspension& operator=(const Suspension&) = delete;

  // One line saying what is awaited ("sleep 1.5s", "Future<int> pending", "Lock.acquire"), for await chains.
  virtual void describe(std::ostream& os) const = 0;

 protected:
  ~Suspension() = default;

  // Records this awaiter as the current task's suspension point and `h` as the coroutine to resume. Returns false
  // if a cancellation is pending: then do not suspend (return false from await_suspend) and do not register.
  // Throws std::logic_error when called outside a task.
  bool park(std::coroutine_handle<> h) {
    detail::TaskBase* t = detail::tls_current_task;
    if (!t) throw std::logic_error("tulipa: awaiting a library awaitable outside a task (use create_task or run)");
    task_ = t;
    return t->park(this, h);
  }
  // park() for an awaiter whose on_cancel() passes the cancellation on to what it awaits (a future, a task,
  // gather). A cancellation the task has pending (it cancelled itself, then awaited) does not make this return
  // false: it is taken, and handed to on_cancel() by forward_pending_cancel() once the awaiter registered, as asyncio
  // cancels the awaited future when a task with a pending cancellation suspends on it. Returns whether one was
  // taken; the awaiter then calls forward_pending_cancel() right after registering.
  bool park_forwarding(std::coroutine_handle<> h) {
    detail::TaskBase* t = detail::tls_current_task;
    if (!t) throw std::logic_error("tulipa: awaiting a library awaitable outside a task (use create_task or run)");
    const bool pending = t->must_cancel_;
    t->must_cancel_ = false;
    task_ = t;
    t->park(this, h);  // no cancellation pending now: parks
    return pending;
  }
  void forward_pending_cancel() noexcept { task_->deliver_cancel(this); }
  // The awaited event happened: resume the task at its next loop pass. Idempotent; ignored once cancelled.
  void wake() noexcept {
    if (state_ == State::parked) task_->wake_from(this);
  }
  // First thing in await_resume: throws CancelledError if this wait was cancelled.
  void check_cancelled() const {
    if (state_ == State::cancelled) throw CancelledError(task_->cancel_message());
  }
  // Opt-in to asyncio's rule for one awaitable: a cancel() that arrived after wake() but before the task resumed is
  // raised here, at this await, instead of at the task's next suspension point. Call it in await_resume after
  // check_cancelled(), once whatever the wake-up gave you is handed on or undone (a notification passed to another
  // waiter...). Throws CancelledError and consumes the pending cancellation if there is one; else does nothing.
  void raise_pending_cancel() const {
    if (task_ && task_->must_cancel_) {
      task_->must_cancel_ = false;
      throw CancelledError(task_->cancel_message());
    }
  }
  bool parked() const noexcept { return state_ == State::parked; }
  bool woken() const noexcept { return state_ == State::woken; }
  bool was_cancelled() const noexcept { return state_ == State::cancelled; }
  detail::TaskBase* task() const noexcept { return task_; }

  // The hook (see the protocol). Called only while parked and not woken.
  virtual Cancel on_cancel() noexcept = 0;

 private:
  friend class detail::TaskBase;
  enum class State : std::uint8_t { idle, parked, woken, cancelled };
  detail::TaskBase* task_ = nullptr;
  State state_ = State::idle;
};

}  // namespace tulipa
