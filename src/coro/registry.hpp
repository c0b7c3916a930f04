// Each loop's coroutine-side state (its live tasks, a task counter for names, the shutdown hooks), kept outside
// EventLoop in a registry keyed by the loop's address, like the default executor's registry.
//
// Lookups are cached per thread (the hot path, create_task, compares one pointer). Entries are never removed: a loop
// destroyed with tasks still pending (close_tasks not called) leaves them listed, and a later loop at the same
// address would see them in all_tasks(). run() always closes its tasks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "tulipa/coro.hpp"
#include "tulipa/loop.hpp"

namespace tulipa::detail {

struct LoopCoro {
  TaskBase* head = nullptr;
  TaskBase* tail = nullptr;
  std::size_t count = 0;
  std::uint64_t created = 0;
  std::vector<std::function<Coro<void>()>> shutdown_hooks;

  void link(TaskBase& t) noexcept;
  void unlink(TaskBase& t) noexcept;
};

LoopCoro& loop_coro(const EventLoop& loop);

}  // namespace tulipa::detail
