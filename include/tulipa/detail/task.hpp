// Internals of tulipa/task.hpp (the library's, not part of the contract).
#pragma once

#include <iosfwd>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tulipa/coro.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"

namespace tulipa {

template <class T>
class Task;
class AnyTask;

namespace detail {

// Registers a new task with its loop (which takes a reference), names it ("Task-<n>" if `name` is empty),
// remembers where it was created and schedules its first step.
void start_task(TaskBase& task, EventLoop& loop, std::string name, std::source_location where);

template <class T>
class TaskState final : public FutureState<T>, public TaskBase {
  // The two halves find each other by a 16-bit offset (no pointers, no second vtable pointer: see TaskBase).
  static_assert(sizeof(FutureState<T>) < 60000, "a task's result this large: return it through a std::unique_ptr");

 public:
  TaskState(EventLoop& loop, typename Coro<T>::Handle h) noexcept : FutureState<T>(loop) {
    const auto offset = static_cast<std::uint16_t>(reinterpret_cast<char*>(static_cast<TaskBase*>(this)) -
                                                   reinterpret_cast<char*>(static_cast<FutureCore*>(this)));
    this->FutureCore::task_offset_ = offset;
    this->TaskBase::core_offset_ = offset;
    root_ = h;
    resume_point_ = h;
    frame_ = &h.promise();
    h.promise().set_task_root(this);
  }
  ~TaskState() override {
    this->report_unretrieved();  // while the task's name still exists
    if (root_) root_.destroy();
  }

 private:
  void task_root_done() noexcept override {
    auto& p = handle().promise();
    std::exception_ptr e = p.failed() ? p.take_exception() : nullptr;
    if (!e) {
      if constexpr (!std::is_void_v<T>) this->value_.emplace(std::move(*p.value_));
    }
    std::exchange(root_, {}).destroy();
    complete(std::move(e));
  }
  void task_destroy_root() noexcept override {
    if (root_) std::exchange(root_, {}).destroy();
  }
  // The root coroutine is TaskBase::root_ (no typed copy of it: 8 bytes less per task).
  typename Coro<T>::Handle handle() const noexcept { return Coro<T>::Handle::from_address(root_.address()); }
};

template <class T>
struct is_coro : std::false_type {};
template <class T>
struct is_coro<Coro<T>> : std::true_type {};
template <class F>
concept CoroFactory = std::is_invocable_v<F&> && is_coro<std::invoke_result_t<F&>>::value;
// Owns the callable in its own frame while the coroutine it returns runs.
template <class F>
std::invoke_result_t<F&> call_owned(F f) {
  co_return co_await f();
}

}  // namespace detail
}  // namespace tulipa
