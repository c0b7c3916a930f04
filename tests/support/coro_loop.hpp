// A loop on a virtual clock that jumps to the next timer (auto_advance), for coroutine tests: a 30 s timeout runs in
// microseconds and no test sleeps for real. Exception-handler calls are recorded instead of printed.
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "tulipa/clock.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"

namespace tulipa::test {

struct Reported {
  std::string message{};
  std::exception_ptr exception{};
  std::string task{};
};

class CoroLoop {
 public:
  CoroLoop() : loop_(options(clock_)) {
    loop_.set_exception_handler(
        [this](EventLoop&, const ErrorContext& c) { reported.push_back({c.message, c.exception, c.task}); });
  }
  ~CoroLoop() {
    close_tasks(loop_);
    loop_.close();
  }
  EventLoop& loop() noexcept { return loop_; }
  VirtualClock& clock() noexcept { return clock_; }
  // Virtual time elapsed since the loop was made.
  Duration elapsed() const noexcept { return clock_.now() - start_; }

  template <class T>
  T run(Coro<T> c) {
    return run_until_complete(loop_, std::move(c));
  }
  template <class T>
  T run(Future<T> f) {
    return run_until_complete(loop_, std::move(f));
  }
  // create_task for a coroutine lambda: the lambda (and its captures) is moved into the task's frame, so it may be a
  // temporary (a lambda coroutine only borrows its closure, which would otherwise die at the end of the statement).
  template <class F>
  auto spawn(F f, std::string name = {}) {
    return create_task(loop_, [](F fn) -> decltype(fn()) { co_return co_await fn(); }(std::move(f)), std::move(name));
  }
  // Runs loop passes until nothing is ready and no timer is pending.
  void drain() {
    for (int i = 0; i < 100000 && (loop_.ready_count() > 0 || loop_.timer_count() > 0); ++i) loop_.run_once();
  }

  std::vector<Reported> reported;

 private:
  static LoopOptions options(VirtualClock& clock) {
    LoopOptions o;
    o.clock = &clock;
    return o;
  }
  VirtualClock clock_{TimePoint{} + std::chrono::hours(1), true};
  TimePoint start_ = clock_.now();
  EventLoop loop_;
};

}  // namespace tulipa::test
