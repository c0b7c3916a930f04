// TaskGroup: asyncio.TaskGroup (3.12 semantics, structured concurrency).
//
//   co_await task_group([&](TaskGroup& tg) -> Coro<void> {
//     tg.create_task(fetch(a));
//     tg.create_task(fetch(b));
//     co_return;
//   });   // returns when every child finished
//
// - When a child fails (an exception other than CancelledError), the other children and the body are cancelled;
//   task_group() then raises an ExceptionGroup holding every child's error (and the body's, if it failed), in
//   completion order. Children that merely got cancelled contribute nothing.
// - When the task running the group is cancelled from outside, the children are cancelled, awaited, and the
//   CancelledError propagates: it is never swallowed, even when the group also cancelled the task itself because
//   a child failed (the bug CPython fixed in 3.12: the group's own cancel() is paired with an uncancel(), and the
//   CancelledError is re-raised when the task's cancelling() count stays above what it was on entry).
//   When children also failed, their ExceptionGroup has priority (as in asyncio) and the outside cancellation stays
//   pending: it is delivered at the task's next suspension point.
// - The body's result is task_group()'s result.
// - create_task() takes a coroutine or a callable returning one (kept alive with its captures while the child runs).
// - create_task() once the group is shutting down (a child failed, or it finished) throws std::logic_error and the
//   coroutine never runs.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tulipa/coro.hpp"
#include "tulipa/future.hpp"
#include "tulipa/task.hpp"
#include "tulipa/timeout.hpp"

namespace tulipa {

class TaskGroup {
 public:
  // Enters the group on the current task (std::logic_error outside a task).
  TaskGroup();
  ~TaskGroup();
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  template <class T>
  Task<T> create_task(Coro<T> coro, std::string name = {},
                      std::source_location where = std::source_location::current()) {
    check_open();
    Task<T> t = tulipa::create_task(*loop_, std::move(coro), std::move(name), where);
    adopt(t);
    return t;
  }
  // With a callable returning a coroutine, typically a lambda with captures, moved into the child task and kept
  // alive as long as it (as the free create_task does):
  //   tg.create_task([name]() -> Coro<void> { co_await greet(name); });
  template <detail::CoroFactory F>
  auto create_task(F f, std::string name = {}, std::source_location where = std::source_location::current()) {
    return create_task(detail::call_owned(std::move(f)), std::move(name), where);
  }
  // Children not finished yet.
  std::size_t size() const noexcept { return live_; }

  // asyncio's __aexit__: waits for every child; raises as described above. `body_error` is what the body ended with.
  // task_group() calls it; call it yourself only if you manage the group's scope by hand (exactly once).
  Coro<void> exit(std::exception_ptr body_error);

 private:
  struct Child;
  void check_open() const;
  void adopt(const AnyTask& t);
  void on_task_done(Child* c) noexcept;
  void abort() noexcept;
  void unlink(Child* c) noexcept;

  EventLoop* loop_;
  AnyTask parent_;
  Child* head_ = nullptr;  // children not finished, and finished ones whose done-callback has not run yet
  std::size_t live_ = 0;
  std::vector<std::exception_ptr> errors_;
  std::optional<Future<void>> on_completed_;
  bool exiting_ = false;
  bool exited_ = false;
  bool aborting_ = false;
  bool parent_cancel_requested_ = false;
};

// Runs `body` (a callable taking TaskGroup& and returning Coro<R>) with a fresh group; returns its result once every
// child finished.
template <class F>
Coro<detail::body_result_t<F, TaskGroup>> task_group(F body) {
  using R = detail::body_result_t<F, TaskGroup>;
  TaskGroup tg;
  std::exception_ptr err;
  if constexpr (std::is_void_v<R>) {
    try {
      co_await detail::call_body(body, tg);
    } catch (...) {
      err = std::current_exception();
    }
    co_await tg.exit(err);
    if (err) std::rethrow_exception(err);
  } else {
    std::optional<R> r;
    try {
      r.emplace(co_await detail::call_body(body, tg));
    } catch (...) {
      err = std::current_exception();
    }
    co_await tg.exit(err);
    if (err) std::rethrow_exception(err);
    co_return std::move(*r);
  }
}

}  // namespace tulipa
