// Task<T>: asyncio.Task. A coroutine the loop drives, step by step, until it finishes. A Task is a Future.
//
// create_task(coro) schedules the task's first step with call_soon; each wake-up (the awaited future completed, a
// sleep ended) is another call_soon, so tasks never run recursively inside each other and share the loop fairly.
//
// Lifetime: the loop keeps every task alive from create_task until it finishes; Task<T> handles are extra references
// (intrusive, loop-thread only). Dropping every handle neither cancels nor destroys a task (asyncio's weak-reference
// trap does not exist here). A task still pending when it is torn down (close_tasks(), or run() giving up on it)
// is reported through the loop's exception handler ("Task was destroyed but it is pending"), and so is an exception
// nobody retrieved ("Task exception was never retrieved").
//
// Cancellation (asyncio 3.12+ semantics, with 3.13's uncancel fix):
//   cancel(msg) delivers CancelledError(msg) at the task's current suspension point (see the cancellation protocol in
//   coro.hpp); if it is running or about to run, at its next one; if it never started, its coroutine never runs.
//   try/catch and destructors run as the exception unwinds. A task refuses a cancellation only explicitly, by
//   catching CancelledError (and should then call uncancel()). cancelling() counts pending cancel() requests;
//   uncancel() decrements it, and when it reaches zero a cancellation not yet delivered is withdrawn.
//   A task whose coroutine lets CancelledError escape ends cancelled (cancelled() is true).
#pragma once

#include <iosfwd>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tulipa/coro.hpp"
#include "tulipa/detail/task.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"

namespace tulipa {

template <class T = void>
class Task;
class AnyTask;

// An untyped handle on any task: what current_task() and all_tasks() return.
class AnyTask {
 public:
  AnyTask() noexcept = default;
  explicit AnyTask(detail::TaskBase* t) noexcept : t_(t) {
    if (t_) t_->retain();
  }
  AnyTask(const AnyTask& o) noexcept : AnyTask(o.t_) {}
  AnyTask(AnyTask&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
  AnyTask& operator=(AnyTask o) noexcept {
    std::swap(t_, o.t_);
    return *this;
  }
  ~AnyTask() {
    if (t_) t_->release();
  }
  explicit operator bool() const noexcept { return t_ != nullptr; }
  friend bool operator==(const AnyTask& a, const AnyTask& b) noexcept { return a.t_ == b.t_; }

  bool cancel(std::string msg = {}) { return t_->cancel(std::move(msg)); }
  int cancelling() const noexcept { return t_->cancelling(); }
  int uncancel() noexcept { return t_->uncancel(); }
  bool done() const noexcept { return t_->done(); }
  bool cancelled() const noexcept;
  // The exception the task ended with (null if it succeeded). InvalidStateError while pending, CancelledError
  // if cancelled.
  std::exception_ptr exception() const;
  const std::string& get_name() const noexcept { return t_->name(); }
  void set_name(std::string name) { t_->set_name(std::move(name)); }
  EventLoop& get_loop() const noexcept { return t_->loop(); }
  // Where create_task was called, in debug mode (EventLoop::set_debug); empty otherwise (asyncio, too, keeps a
  // task's creation traceback only in debug mode).
  std::source_location created_at() const noexcept { return t_->created_at(); }
  // The await chain: the task's line, then one line per coroutine (function, file:line of its co_await), then the
  // leaf awaitable.
  void print_stack(std::ostream& os) const { t_->print_stack(os); }
  detail::TaskBase* base() const noexcept { return t_; }

 private:
  detail::TaskBase* t_ = nullptr;
};

template <class T>
class Task : public Future<T> {
 public:
  Task() noexcept : Future<T>(nullptr) {}
  explicit Task(detail::TaskState<T>* st) noexcept : Future<T>(Future<T>::from_state(st)) {}

  // Requests cancellation (see the top of this file). False if the task is already done.
  bool cancel(std::string msg = {}) { return this->st_->cancel(std::move(msg)); }
  int cancelling() const noexcept { return base()->cancelling(); }
  int uncancel() noexcept { return base()->uncancel(); }
  const std::string& get_name() const noexcept { return base()->name(); }
  void set_name(std::string name) { base()->set_name(std::move(name)); }
  void print_stack(std::ostream& os) const { base()->print_stack(os); }
  operator AnyTask() const noexcept { return AnyTask(base()); }  // NOLINT: a Task is a task
  detail::TaskBase* base() const noexcept { return this->st_->task(); }

 private:
  // A task's result comes from its coroutine only: Future's completing members are not part of a Task.
  using Future<T>::set_result;
  using Future<T>::set_exception;
  using Future<T>::try_set_result;
  using Future<T>::try_set_exception;
};

// Wraps `coro` in a task on `loop` and schedules its first step. `name` defaults to "Task-<n>". On a closed loop it
// throws std::logic_error and destroys `coro` (it never runs).
template <class T>
Task<T> create_task(EventLoop& loop, Coro<T> coro, std::string name = {},
                    std::source_location where = std::source_location::current()) {
  if (!coro.valid()) throw std::invalid_argument("tulipa::create_task: empty or finished coroutine");
  // asyncio raises RuntimeError and closes the coroutine: `coro` is destroyed with its frame as this throws.
  if (loop.is_closed()) throw std::logic_error("tulipa::create_task: the event loop is closed");
  auto* st = new detail::TaskState<T>(loop, coro.release());
  Task<T> task(st);
  detail::start_task(*st, loop, std::move(name), where);
  return task;
}
// The same on the running loop (std::runtime_error when none runs on this thread).
template <class T>
Task<T> create_task(Coro<T> coro, std::string name = {}, std::source_location where = std::source_location::current()) {
  return create_task(get_running_loop(), std::move(coro), std::move(name), where);
}

// create_task with a callable returning a coroutine, typically a lambda with captures:
//   create_task([conn = std::move(conn)]() -> Coro<void> { co_await serve(conn); });
// A lambda coroutine only borrows its closure, which would die at the end of the statement; here the callable is
// moved into the task first and lives as long as it.
template <detail::CoroFactory F>
auto create_task(EventLoop& loop, F f, std::string name = {},
                 std::source_location where = std::source_location::current()) {
  return create_task(loop, detail::call_owned(std::move(f)), std::move(name), where);
}
template <detail::CoroFactory F>
auto create_task(F f, std::string name = {}, std::source_location where = std::source_location::current()) {
  return create_task(get_running_loop(), detail::call_owned(std::move(f)), std::move(name), where);
}

// The task running on this thread (empty outside a task step).
AnyTask current_task() noexcept;
// Every task of `loop` that has not finished, in creation order.
std::vector<AnyTask> all_tasks(EventLoop& loop);
// Every unfinished task's await chain, one block per task: what a hung program is waiting for.
void dump_tasks(EventLoop& loop, std::ostream& os);
// Tears down the unfinished tasks of `loop` without running them: each is reported through the exception handler
// ("Task was destroyed but it is pending") and its coroutine frames are destroyed (destructors run, no catch blocks).
// run() calls it for tasks that survived cancellation; call it yourself before destroying a loop you drove by hand.
// Returns how many tasks were torn down.
std::size_t close_tasks(EventLoop& loop);

}  // namespace tulipa
