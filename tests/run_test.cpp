// tulipa::run (asyncio.run) and run_until_complete.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/coro_loop.hpp"
#include "tulipa/future.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace std::chrono_literals;
using tulipa::CancelledError;
using tulipa::Coro;
using tulipa::RunOptions;

namespace {

RunOptions virtual_time(tulipa::VirtualClock& clock) {
  RunOptions o;
  o.clock = &clock;
  return o;
}

Coro<int> answer() {
  co_await tulipa::sleep(1s);
  co_return 42;
}

TEST(Run, ReturnsTheResult) {
  tulipa::VirtualClock clock(tulipa::TimePoint{} + 1h, true);
  EXPECT_EQ(tulipa::run(answer(), virtual_time(clock)), 42);
  EXPECT_EQ(tulipa::running_loop(), nullptr);
}

TEST(Run, RethrowsTheException) {
  auto failing = []() -> Coro<void> {
    co_await tulipa::sleep(0ms);
    throw std::domain_error("main failed");
  };
  EXPECT_THROW(tulipa::run(failing()), std::domain_error);
}

TEST(Run, CancelsWhatIsLeftAndLetsItCleanUp) {
  tulipa::VirtualClock clock(tulipa::TimePoint{} + 1h, true);
  std::vector<std::string> log;
  auto background = [&]() -> Coro<void> {
    try {
      co_await tulipa::sleep(1h);
    } catch (const CancelledError&) {
      log.push_back("background cancelled");
      throw;
    }
  };
  auto main = [&]() -> Coro<int> {
    (void)tulipa::create_task(background());
    co_await tulipa::sleep(1s);
    co_return 1;
  };
  EXPECT_EQ(tulipa::run(main(), virtual_time(clock)), 1);
  EXPECT_EQ(log, (std::vector<std::string>{"background cancelled"}));
}

TEST(Run, ReportsLeftoversThatFailWhileCancelledAndTearsDownStubbornOnes) {
  tulipa::VirtualClock clock(tulipa::TimePoint{} + 1h, true);
  std::vector<std::string> reported;
  bool stubborn_destroyed = false;
  auto failing_cleanup = []() -> Coro<void> {
    try {
      co_await tulipa::sleep(1h);
    } catch (const CancelledError&) {
    }
    throw std::runtime_error("cleanup failed");
  };
  auto stubborn = [&]() -> Coro<void> {
    struct G {
      bool& b;
      ~G() { b = true; }
    } g{stubborn_destroyed};
    for (;;) {
      try {
        co_await tulipa::sleep(1h);
      } catch (const CancelledError&) {
        // refuses every cancellation and keeps waiting
      }
      co_await tulipa::Future<void>();  // then waits on something nobody completes
    }
  };
  auto main = [&]() -> Coro<void> {
    tulipa::get_running_loop().set_exception_handler(
        [&](tulipa::EventLoop&, const tulipa::ErrorContext& c) { reported.push_back(c.message); });
    (void)tulipa::create_task(failing_cleanup());
    (void)tulipa::create_task(stubborn(), "stubborn");
    co_await tulipa::sleep(1s);
  };
  tulipa::run(main(), virtual_time(clock));
  EXPECT_TRUE(stubborn_destroyed);
  ASSERT_GE(reported.size(), 2u);
  EXPECT_NE(std::find(reported.begin(), reported.end(), "unhandled exception during tulipa::run() shutdown"),
            reported.end());
  EXPECT_NE(std::find(reported.begin(), reported.end(), "Task was destroyed but it is pending"), reported.end());
}

TEST(Run, NotFromARunningLoop) {
  auto nested = []() -> Coro<bool> {
    try {
      tulipa::run(answer());
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(tulipa::run(nested()));
}

TEST(Run, ShutdownHooksRunBeforeClosing) {
  tulipa::VirtualClock clock(tulipa::TimePoint{} + 1h, true);
  std::vector<std::string> log;
  auto main = [&]() -> Coro<void> {
    tulipa::add_shutdown_hook(tulipa::get_running_loop(), [&]() -> Coro<void> {
      co_await tulipa::sleep(1s);  // a hook may await
      log.push_back("hook");
    });
    co_return;
  };
  tulipa::run(main(), virtual_time(clock));
  EXPECT_EQ(log, (std::vector<std::string>{"hook"}));
}

TEST(RunUntilComplete, CoroutinesTasksAndFutures) {
  tulipa::test::CoroLoop l;
  EXPECT_EQ(tulipa::run_until_complete(l.loop(), answer()), 42);
  auto t = tulipa::create_task(l.loop(), answer());
  EXPECT_EQ(tulipa::run_until_complete(l.loop(), tulipa::Future<int>(t)), 42);
  tulipa::Future<int> f(l.loop());
  l.loop().call_later(5s, [&] { f.set_result(3); });
  EXPECT_EQ(tulipa::run_until_complete(l.loop(), f), 3);
}

TEST(RunUntilComplete, LoopStoppedEarlyIsAnError) {
  tulipa::test::CoroLoop l;
  tulipa::Future<int> f(l.loop());
  l.loop().call_later(1s, [&] { l.loop().stop(); });
  EXPECT_THROW(tulipa::run_until_complete(l.loop(), f), std::runtime_error);
  f.cancel();
}

}  // namespace
