// What the HTTP tests do with their loop besides serving: run a coroutine to its end, and close the loop after a
// few passes that let aborted connections and cancelled handlers finish (never blocking in the selector).
#pragma once

#include <gtest/gtest.h>

#include <utility>

#include "support/net_util.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/task.hpp"

namespace tulipa::test {

// Runs `f` (a callable returning a coroutine) as a task until it is done; returns the task.
template <class F>
auto run_task(EventLoop& loop, F f) {
  auto task = create_task(loop, std::move(f));
  EXPECT_TRUE(run_until(loop, [&] { return task.done(); }));
  return task;
}

inline void finish_loop(EventLoop& loop) {
  for (int i = 0; i < 3; ++i) {
    loop.call_soon([&loop] { loop.stop(); });
    loop.run_forever();
  }
  loop.close();
}

}  // namespace tulipa::test
