// run_coroutine_threadsafe(): asyncio.run_coroutine_threadsafe. Another thread hands a coroutine to a running loop
// and gets a ConcurrentFuture (concurrent.futures.Future) it can block on.
//
//   // on any thread but the loop's:
//   tulipa::ConcurrentFuture<int> f = tulipa::run_coroutine_threadsafe(compute(), loop);
//   int v = f.result();                 // blocks this thread; rethrows the coroutine's exception
//
// The coroutine object is created on the calling thread but runs only on the loop, as a task (it is lazy: nothing of
// its body runs before). Its frame is freed on the loop thread.
//
// ConcurrentFuture: every member may be called from any thread except the loop's own (blocking there would
// deadlock: result() on the loop thread throws std::logic_error while the future is pending). It is move-only; the
// state it shares with the loop is reference-counted atomically. Waiting uses the futex under the state word, and the
// loop side makes the wake-up system call only when a thread actually waits.
//
// The loop must outlive every call made on it from another thread (run_coroutine_threadsafe, cancel()), exactly as
// for EventLoop::call_soon_threadsafe; waiting on a ConcurrentFuture needs no loop.
//
// cancel() (concurrent.futures semantics, as asyncio wires it): a pending future becomes cancelled at once (result()
// raises CancelledError) and the task is asked to cancel on the loop. A result that arrives after that is destroyed on
// the loop thread. If the loop is closed (or the task torn down) before the coroutine finished, the future fails
// with CancelledError("the event loop closed before the coroutine finished"); it never hangs.
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
#include "tulipa/detail/threadsafe.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/task.hpp"

namespace tulipa {

template <class T>
class ConcurrentFuture;

template <class T>
class [[nodiscard]] ConcurrentFuture {
 public:
  ConcurrentFuture() noexcept = default;
  explicit ConcurrentFuture(detail::ConcurrentState<T>* st) noexcept : st_(st) {}
  ConcurrentFuture(ConcurrentFuture&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  ConcurrentFuture& operator=(ConcurrentFuture&& o) noexcept {
    if (this != &o) {
      reset();
      st_ = std::exchange(o.st_, nullptr);
    }
    return *this;
  }
  ~ConcurrentFuture() { reset(); }
  explicit operator bool() const noexcept { return st_ != nullptr; }

  bool done() const noexcept { return st_->finished(); }
  bool cancelled() const noexcept { return st_->outcome() == detail::ConcurrentWord::cancelled; }
  void wait() const {
    if (!done()) detail::check_not_loop_thread(*st_);
    st_->wait_until(TimePoint::max());
  }
  // True if it finished within `timeout`.
  bool wait_for(Duration timeout) const {
    if (!done()) detail::check_not_loop_thread(*st_);
    return st_->wait_until(deadline(timeout));
  }
  // Waits, then returns the result (a reference into the future; for void, nothing), or throws the coroutine's
  // exception, CancelledError if cancelled. The timed form throws TimeoutError if not done in time.
  decltype(auto) result() const {
    wait();
    return get();
  }
  decltype(auto) result(Duration timeout) const {
    if (!wait_for(timeout)) throw TimeoutError("run_coroutine_threadsafe: result() timed out");
    return get();
  }
  // Waits, then the exception the coroutine ended with (null if it succeeded); CancelledError if cancelled.
  std::exception_ptr exception() const {
    wait();
    if (cancelled()) throw CancelledError();
    return st_->error;
  }
  // See the top of the file. False if it already finished (or is being completed right now).
  bool cancel() noexcept {
    if (!st_->try_cancel()) return false;
    st_->ref();
    detail::post_task_cancel(
        st_, [](detail::ConcurrentCore* c) noexcept { static_cast<detail::ConcurrentState<T>*>(c)->unref(); });
    return true;
  }

 private:
  static TimePoint deadline(Duration timeout) noexcept {
    auto now = std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
    return timeout >= TimePoint::max() - now ? TimePoint::max() : now + timeout;
  }
  decltype(auto) get() const {
    if (cancelled()) throw CancelledError();
    if (st_->error) std::rethrow_exception(st_->error);
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return static_cast<const T&>(*st_->value);
    }
  }
  void reset() noexcept {
    if (st_) std::exchange(st_, nullptr)->unref();
  }
  detail::ConcurrentState<T>* st_ = nullptr;
};

// Schedules `coro` on `loop` (running on another thread) as a task. Throws std::logic_error if the loop is closed.
template <class T>
ConcurrentFuture<T> run_coroutine_threadsafe(Coro<T> coro, EventLoop& loop) {
  if (!coro.valid()) throw std::invalid_argument("run_coroutine_threadsafe: empty or finished coroutine");
  auto* st = new detail::ConcurrentState<T>();  // one reference: the returned future's
  st->loop = &loop;
  st->ref();  // the loop side's, owned by the runner's frame from here on
  Coro<void> runner = detail::run_concurrent<T>(std::move(coro), detail::ConcurrentLoopRef<T>(st));
  ConcurrentFuture<T> future(st);
  // The callback carries only the runner's frame (one pointer: no allocation); dropped unrun by a closing loop, the
  // frame's destruction fails the future.
  loop.call_soon_threadsafe([runner = std::move(runner), st, &loop]() mutable {
    Task<void> task = create_task(loop, std::move(runner));
    st->task = task.base();
    st->task_alive = !task.done();
  });
  return future;
}

}  // namespace tulipa
