// run_coroutine_threadsafe and ConcurrentFuture: from many threads, results and exceptions, cancellation from the
// calling thread, timeouts, and a loop that closes first. Runs under TSan.
#include "tulipa/threadsafe.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/sync.hpp"

using namespace std::chrono_literals;
using tulipa::CancelledError;
using tulipa::Coro;
using tulipa::EventLoop;

namespace {

// A loop running on a thread of its own for the duration of a test.
class LoopThread {
 public:
  LoopThread() {
    std::promise<void> running;
    thread_ = std::thread([&] {
      loop_.call_soon([&] { running.set_value(); });
      loop_.run_forever();
      tulipa::close_tasks(loop_);
    });
    running.get_future().get();
  }
  ~LoopThread() {
    loop_.stop_threadsafe();
    thread_.join();
  }
  EventLoop& loop() { return loop_; }

 private:
  EventLoop loop_;
  std::thread thread_;
};

Coro<int> twice(int v) {
  co_await tulipa::sleep(0ns);  // really suspends on the loop
  co_return v * 2;
}

TEST(RunCoroutineThreadsafe, ManyThreadsGetTheirOwnResults) {
  LoopThread lt;
  constexpr int threads = 8, per_thread = 300;
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      std::vector<tulipa::ConcurrentFuture<int>> futures;
      for (int i = 0; i < per_thread; ++i) {
        futures.push_back(tulipa::run_coroutine_threadsafe(twice(t * per_thread + i), lt.loop()));
      }
      for (int i = 0; i < per_thread; ++i) {
        if (futures[i].result() != 2 * (t * per_thread + i)) ++wrong;
        if (!futures[i].done() || futures[i].cancelled()) ++wrong;
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(RunCoroutineThreadsafe, PropagatesTheCoroutinesException) {
  LoopThread lt;
  auto f = tulipa::run_coroutine_threadsafe(
      []() -> Coro<void> {
        co_await tulipa::sleep(0ns);
        throw std::runtime_error("from the loop");
      }(),
      lt.loop());
  EXPECT_THROW(f.result(), std::runtime_error);
  ASSERT_TRUE(f.exception());
  EXPECT_EQ(tulipa::describe_exception(f.exception()), "from the loop");
}

TEST(RunCoroutineThreadsafe, CancelFromTheCallingThreadCancelsTheTask) {
  tulipa::Event never;  // loop-thread object; only the loop touches it
  LoopThread lt;
  std::promise<void> started;
  std::promise<bool> task_saw_cancel;
  auto f = tulipa::run_coroutine_threadsafe(
      [](tulipa::Event& ev, std::promise<void>& st, std::promise<bool>& saw) -> Coro<int> {
        st.set_value();
        try {
          co_await ev.wait();
        } catch (const CancelledError&) {
          saw.set_value(true);
          throw;
        }
        co_return 1;
      }(never, started, task_saw_cancel),
      lt.loop());
  started.get_future().get();  // (a task cancelled before its first step never runs its coroutine, as in asyncio)
  EXPECT_FALSE(f.done());
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
  EXPECT_FALSE(f.cancel());  // already finished
  EXPECT_THROW(f.result(), CancelledError);
  EXPECT_TRUE(task_saw_cancel.get_future().get());
}

TEST(RunCoroutineThreadsafe, CancelledBeforeItStartedTheCoroutineNeverRuns) {
  EventLoop loop;
  std::atomic<bool> ran{false};
  auto f = tulipa::run_coroutine_threadsafe(
      [](std::atomic<bool>& r) -> Coro<void> {
        r = true;
        co_return;
      }(ran),
      loop);
  EXPECT_TRUE(f.cancel());  // the loop has not even picked the coroutine up
  // A few passes: the task is created, the cancellation arrives, the first step finds it cancelled.
  tulipa::run_until_complete(loop, []() -> Coro<void> {
    for (int i = 0; i < 5; ++i) co_await tulipa::sleep(0ns);
  }());
  EXPECT_FALSE(ran.load());
  EXPECT_THROW(f.result(), CancelledError);
}

TEST(RunCoroutineThreadsafe, ResultWithATimeoutAndThenTheResult) {
  tulipa::Event go;
  LoopThread lt;
  auto f = tulipa::run_coroutine_threadsafe(
      [](tulipa::Event& ev) -> Coro<int> {
        co_await ev.wait();
        co_return 7;
      }(go),
      lt.loop());
  EXPECT_THROW(f.result(1ms), tulipa::TimeoutError);  // the coroutine cannot finish before `go` is set
  EXPECT_FALSE(f.wait_for(0ns));
  auto setter = tulipa::run_coroutine_threadsafe(
      [](tulipa::Event& ev) -> Coro<void> {
        ev.set();
        co_return;
      }(go),
      lt.loop());
  setter.result();
  EXPECT_EQ(f.result(), 7);
  EXPECT_TRUE(f.wait_for(0ns));
}

TEST(RunCoroutineThreadsafe, WaitingOnTheLoopThreadIsRefused) {
  tulipa::Event never;
  LoopThread lt;
  auto pending =
      tulipa::run_coroutine_threadsafe([](tulipa::Event& ev) -> Coro<void> { co_await ev.wait(); }(never), lt.loop());
  auto check = tulipa::run_coroutine_threadsafe(
      [](tulipa::ConcurrentFuture<void>& p) -> Coro<bool> {
        try {
          p.result();
        } catch (const std::logic_error&) {
          co_return true;
        }
        co_return false;
      }(pending),
      lt.loop());
  EXPECT_TRUE(check.result());
  pending.cancel();
  (void)tulipa::run_coroutine_threadsafe(twice(0), lt.loop()).result();  // a round trip: the cancellation landed
}

TEST(RunCoroutineThreadsafe, ALoopClosedBeforeTheCoroutineRanFailsTheFuture) {
  EventLoop loop;
  auto f = tulipa::run_coroutine_threadsafe(twice(1), loop);  // queued; the loop never runs
  loop.close();
  EXPECT_TRUE(f.done());
  EXPECT_THROW(f.result(), CancelledError);
  EXPECT_THROW((void)tulipa::run_coroutine_threadsafe(twice(2), loop), std::logic_error);
}

TEST(RunCoroutineThreadsafe, ATaskTornDownByCloseTasksFailsTheFuture) {
  EventLoop loop;
  tulipa::Event never;
  std::promise<void> parked;
  auto f = tulipa::run_coroutine_threadsafe(
      [](tulipa::Event& ev, std::promise<void>& p) -> Coro<void> {
        p.set_value();
        co_await ev.wait();
      }(never, parked),
      loop);
  std::thread runner([&] { loop.run_forever(); });
  parked.get_future().get();
  loop.stop_threadsafe();
  runner.join();
  EXPECT_FALSE(f.done());
  tulipa::close_tasks(loop);  // destroys the waiting task's frames without running them
  EXPECT_TRUE(f.done());
  EXPECT_THROW(f.result(), CancelledError);
}

}  // namespace
