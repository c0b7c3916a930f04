// The documented way to complete a future from another thread: move a handle into the thread's job, complete it
// through call_soon_threadsafe. Runs under TSan (label "threads").
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "tulipa/future.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using tulipa::Coro;
using tulipa::Future;

namespace {

TEST(FutureThreads, CompletedFromWorkerThreadsThroughCallSoonThreadsafe) {
  auto body = []() -> Coro<int> {
    tulipa::EventLoop& loop = tulipa::get_running_loop();
    std::vector<std::thread> workers;
    std::vector<Future<int>> futures;
    for (int i = 0; i < 8; ++i) {
      Future<int> f(loop);
      futures.push_back(f);  // copies on the loop thread
      workers.emplace_back([&loop, f = std::move(f), i]() mutable {
        // Moving never touches the count; the handle goes back to the loop thread inside the callback.
        loop.call_soon_threadsafe([f = std::move(f), i]() mutable { f.try_set_result(i * i); });
      });
    }
    int sum = 0;
    for (auto& f : futures) sum += co_await f;
    for (auto& w : workers) w.join();
    co_return sum;
  };
  EXPECT_EQ(tulipa::run(body()), 0 + 1 + 4 + 9 + 16 + 25 + 36 + 49);
}

TEST(FutureThreads, ACancelledWaiterMakesTheLateCompletionANoOp) {
  auto body = []() -> Coro<bool> {
    tulipa::EventLoop& loop = tulipa::get_running_loop();
    Future<int> f(loop);
    Future<int> for_worker = f;
    auto waiter = tulipa::create_task([f]() -> Coro<int> { co_return co_await f; });
    co_await tulipa::sleep(std::chrono::milliseconds(0));
    waiter.cancel();  // cancels `f` too (asyncio semantics)
    bool accepted = true;
    std::thread worker([&loop, g = std::move(for_worker), &accepted]() mutable {
      loop.call_soon_threadsafe([g = std::move(g), &accepted]() mutable { accepted = g.try_set_result(1); });
    });
    worker.join();
    co_await tulipa::sleep(std::chrono::milliseconds(0));
    co_await tulipa::sleep(std::chrono::milliseconds(0));
    co_return !accepted && f.cancelled() && waiter.cancelled();
  };
  EXPECT_TRUE(tulipa::run(body()));
}

}  // namespace
