// Each loop's coroutine-side state (its live tasks, a task counter for names, the shutdown hooks), kept on the loop
// as a LoopExtension: made with the loop's first task, and when the loop closes, the tasks still pending are
// reported ("Task was destroyed but it is pending") and torn down (close_tasks), whether or not run() drove it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "tulipa/coro.hpp"
#include "tulipa/loop.hpp"

namespace tulipa::detail {

struct TaskRegistry final : LoopExtension {
  TaskBase* head = nullptr;
  TaskBase* tail = nullptr;
  std::size_t count = 0;
  std::uint64_t created = 0;
  std::vector<std::function<Coro<void>()>> shutdown_hooks;

  void link(TaskBase& t) noexcept;
  void unlink(TaskBase& t) noexcept;
  void on_close(EventLoop& loop) noexcept override;
  ~TaskRegistry() override;  // detaches tasks still listed (a handle may outlive the loop)
};

TaskRegistry& task_registry(const EventLoop& loop);

}  // namespace tulipa::detail
