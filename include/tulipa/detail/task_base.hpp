// Internals of coro.hpp and task.hpp: the non-template core of a task (TaskBase) and the per-thread slots the
// coroutine machinery shares (the running task, the exception of the coroutine that just failed).
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <iosfwd>
#include <memory>
#include <source_location>
#include <string>

namespace tulipa {

class EventLoop;
class Suspension;

namespace detail {

class TaskBase;
class PromiseBase;
class FutureCore;

// The per-thread slot through which a failed coroutine hands its exception to the code that resumes next.
void stash_exception(std::exception_ptr e) noexcept;
std::exception_ptr take_stashed_exception() noexcept;

// The task stepping on this thread (null outside a step).
extern thread_local constinit TaskBase* tls_current_task __attribute__((tls_model("initial-exec")));

// The non-template core of a task: what the loop, awaiters and diagnostics need. Defined in task.hpp's
// implementation (src/coro/task.cpp); the typed result lives in TaskState<T>.
class TaskBase {
 public:
  // --- used by Suspension (the protocol above)
  bool park(Suspension* s, std::coroutine_handle<> h);
  void wake_from(Suspension* s) noexcept;
  // Hands a cancellation to the parked leaf `s` (its on_cancel()); what cancel() does for a parked task.
  void deliver_cancel(Suspension* s) noexcept;
  const std::string& cancel_message() const noexcept;

  // --- task API (Task<T> and AnyTask forward here)
  bool cancel(std::string msg);
  int cancelling() const noexcept { return cancel_requests_; }
  int uncancel() noexcept;
  bool done() const noexcept;
  // The default name "Task-<id>" is only made into a string when first asked for (a std::bad_alloc then
  // terminates, as name() is noexcept).
  const std::string& name() const noexcept;
  void set_name(std::string name);
  EventLoop& loop() const noexcept;
  // The await chain, top (the task's coroutine) to bottom (the leaf awaitable), one line each.
  void print_stack(std::ostream& os) const;

  // Debug mode only (asyncio keeps a task's creation traceback only then): where create_task was called.
  std::source_location created_at() const noexcept;

  // --- internals shared with the coroutine machinery. Laid out for the per-task budget (a server keeps a task per
  // connection): 72 bytes here, no vtable pointer (the typed hooks go through the future state's), 112 bytes for a
  // TaskState<void> in all.
  PromiseBase* frame_ = nullptr;          // innermost coroutine of this task (await chains)
  Suspension* leaf_ = nullptr;            // current suspension point, null while running or ready to run
  std::coroutine_handle<> resume_point_;  // the coroutine to resume at the next step
  int cancel_requests_ = 0;               // cancelling()
  std::uint16_t core_offset_ = 0;         // from the future state (FutureCore) back to here, see core()
  bool must_cancel_ : 1 = false;          // a cancellation waits for the next suspension point
  bool step_scheduled_ : 1 = false;
  bool started_ : 1 = false;
  bool finished_ : 1 = false;
  bool registered_ : 1 = false;  // in its loop's list of live tasks (all_tasks)
  // What only some tasks need lives out of line, allocated on first use: an idle task per connection then costs
  // 8 bytes here instead of three std::strings (96 bytes).
  struct Extras {
    std::string name;  // valid once named: set_name() or the first name() of a default-named task
    bool named = false;
    std::string cancel_message;         // of the last cancel()
    std::string created_by;             // debug mode: the creating task's await chain
    std::source_location created_at{};  // debug mode
  };
  Extras& extras();
  std::uint64_t id_ = 0;  // "Task-<id>", the loop's count of created tasks
  mutable std::unique_ptr<Extras> extras_;
  TaskBase* reg_prev_ = nullptr;  // the loop's list of live tasks (all_tasks)
  TaskBase* reg_next_ = nullptr;

  void schedule_step();
  void step();
  void retain() noexcept;  // counts on the task's future state
  void release() noexcept;
  // Destroys the coroutine frames of a pending task without running it and ends it cancelled (close_tasks).
  void teardown() noexcept;
  // The future side of this task: TaskState<T> derives from both, core_offset_ bytes before this base.
  FutureCore& core() noexcept { return *reinterpret_cast<FutureCore*>(reinterpret_cast<char*>(this) - core_offset_); }
  const FutureCore& core() const noexcept { return const_cast<TaskBase*>(this)->core(); }

 protected:
  TaskBase() = default;
  ~TaskBase() = default;
  // Called after the root coroutine finished: moves its result or exception into the future state and destroys
  // the frame (FutureCore::task_root_done, overridden by TaskState<T>). Or, when the task is torn down while
  // pending, destroys the frame (task_destroy_root).
  void on_root_done() noexcept;
  void destroy_root() noexcept;
  // Finishes the future side (cancelled if `e` is a CancelledError), leaves the loop's task list, drops the loop's
  // reference. TaskState<T> stores the value first.
  void complete(std::exception_ptr e) noexcept;
  std::coroutine_handle<> root_;
  friend struct TaskAccess;
};

}  // namespace detail
}  // namespace tulipa
