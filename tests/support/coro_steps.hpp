// Helpers for tests that step tasks on a running loop (sync_test, queue_test).
#pragma once

#include <chrono>

#include "tulipa/coro.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

namespace tulipa::test {

// Lets every ready task run a few steps: tasks just created reach their first suspension, woken ones resume.
inline Coro<void> settle(int passes = 5) {
  for (int i = 0; i < passes; ++i) co_await tulipa::sleep(std::chrono::nanoseconds(0));
}

template <class T>
bool ends_cancelled(Task<T>& t) {
  return t.done() && t.cancelled();
}

}  // namespace tulipa::test
