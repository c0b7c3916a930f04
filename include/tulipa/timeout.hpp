// Timeouts: asyncio.timeout / timeout_at (3.11+) and wait_for (3.12: built on them).
//
//   int n = co_await timeout(5s, [&](Timeout& t) -> Coro<int> {   // or a body taking no argument,
//     co_await step1();                                           // or directly a Coro<int>
//     t.reschedule(t.when().value() + 5s);                         // a scope can be moved, disabled, re-armed
//     co_return co_await step2();
//   });                                                           // TimeoutError if the deadline passed
//
// At the deadline the scope cancels its task (Task::cancel). When the body then ends with that CancelledError, the
// scope turns it into TimeoutError, but only if no other cancellation is pending on the task: the scope compares
// the task's cancelling() count on entry and on exit (uncancel()), so a cancellation from outside that arrives in
// the meantime propagates as CancelledError and is never swallowed, with nested scopes in any order.
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "tulipa/clock.hpp"
#include "tulipa/combinators.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/future.hpp"
#include "tulipa/handle.hpp"
#include "tulipa/task.hpp"

namespace tulipa {

// The scope object (asyncio.Timeout). Lives in the frame of the coroutine running the body.
class Timeout {
 public:
  // Enters the scope on the current task (std::logic_error outside a task). nullopt: no deadline (yet).
  explicit Timeout(std::optional<TimePoint> when);
  ~Timeout();
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;

  // The deadline, or nullopt if disabled.
  std::optional<TimePoint> when() const noexcept { return when_; }
  // Moves the deadline (nullopt disables it). A deadline already past cancels the task on the next loop pass.
  // std::logic_error once the deadline fired or the scope exited.
  void reschedule(std::optional<TimePoint> when);
  // True once the deadline fired.
  bool expired() const noexcept { return state_ == State::expiring || state_ == State::expired; }
  // Leaves the scope. `body_error` is what the body ended with (null if nothing). Throws TimeoutError (instead of
  // the CancelledError) when this scope's deadline cancelled the task and nothing else is pending.
  void exit(const std::exception_ptr& body_error);

 private:
  enum class State : unsigned char { entered, expiring, expired, exited };
  void on_timeout() noexcept;
  AnyTask task_;
  int cancelling_ = 0;
  std::optional<TimePoint> when_;
  Handle handle_;
  State state_ = State::entered;
};

namespace detail {
template <class F, class Arg>
decltype(auto) call_body(F& body, Arg& arg) {
  if constexpr (std::is_invocable_v<F&, Arg&>) {
    return body(arg);
  } else if constexpr (std::is_invocable_v<F&>) {
    return body();
  } else {
    return std::move(body);  // already a Coro
  }
}
template <class F, class Arg>
using body_coro_t = std::remove_cvref_t<decltype(call_body(std::declval<F&>(), std::declval<Arg&>()))>;
template <class F, class Arg>
using body_result_t = typename body_coro_t<F, Arg>::value_type;
}  // namespace detail

// Runs `body` (a Coro<R>, or a callable returning one, taking Timeout& or nothing) under a deadline.
template <class F>
Coro<detail::body_result_t<F, Timeout>> timeout_at(std::optional<TimePoint> when, F body) {
  using R = detail::body_result_t<F, Timeout>;
  Timeout scope(when);
  std::exception_ptr err;
  if constexpr (std::is_void_v<R>) {
    try {
      co_await detail::call_body(body, scope);
    } catch (...) {
      err = std::current_exception();
    }
    scope.exit(err);
    if (err) std::rethrow_exception(err);
  } else {
    std::optional<R> r;
    try {
      r.emplace(co_await detail::call_body(body, scope));
    } catch (...) {
      err = std::current_exception();
    }
    scope.exit(err);
    if (err) std::rethrow_exception(err);
    co_return std::move(*r);
  }
}

// The same with a delay from now (nullopt: no deadline).
template <class F>
Coro<detail::body_result_t<F, Timeout>> timeout(std::optional<Duration> delay, F body) {
  std::optional<TimePoint> when;
  if (delay) when = get_running_loop().time() + *delay;
  return timeout_at(when, std::move(body));
}

// asyncio.wait_for: awaits `aw` (a Coro, Task or Future) under a timeout; TimeoutError when it expires. A task or
// future is cancelled at the deadline (and awaited until it is done, as asyncio 3.12 does); a coroutine runs inline
// in the calling task. A delay <= 0 does not run a coroutine at all and cancels a pending task/future at once.
template <class T>
Coro<T> wait_for(Coro<T> aw, std::optional<Duration> delay) {
  if (delay && *delay <= Duration::zero()) {
    aw = Coro<T>();  // never started, as asyncio's cancelled-before-start task
    throw TimeoutError();
  }
  co_return co_await timeout(delay, std::move(aw));
}
template <class T>
Coro<T> wait_for(Future<T> fut, std::optional<Duration> delay) {
  if (delay && *delay <= Duration::zero()) {
    if (fut.done()) co_return co_await std::move(fut);
    fut.cancel();
    try {
      // Wait for the task's cleanup without cancelling it again if we are cancelled meanwhile (asyncio's
      // _cancel_and_wait). A task that refused the cancellation gives its result.
      co_return co_await ShieldAwaiter<T>(fut);
    } catch (const CancelledError&) {
      if (!fut.done()) throw;  // we were cancelled from outside while waiting: propagate
    }
    throw TimeoutError();
  }
  co_return co_await timeout(delay, [&]() -> Coro<T> { co_return co_await std::move(fut); });
}
template <class T>
Coro<T> wait_for(Task<T> task, std::optional<Duration> delay) {
  return wait_for(Future<T>(std::move(task)), delay);
}
// A callable returning a coroutine (a lambda with captures), kept alive while its coroutine runs.
template <detail::CoroFactory F>
auto wait_for(F f, std::optional<Duration> delay) {
  return wait_for(detail::call_owned(std::move(f)), delay);
}

}  // namespace tulipa
