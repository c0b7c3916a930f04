// Locks and queues between tasks on one loop: what an uncontended operation costs, and what a hand-over between two
// tasks costs (each hand-over is a wake-up: one call_soon and one task step).
#include <benchmark/benchmark.h>

#include <chrono>

#include "tulipa/queue.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"

using tulipa::Coro;

namespace {

void BM_Lock_Uncontended(benchmark::State& state) {
  tulipa::run([](benchmark::State& st) -> Coro<void> {
    tulipa::Lock lock;
    for (auto _ : st) {
      co_await lock.acquire();
      lock.release();
    }
  }(state));
}
BENCHMARK(BM_Lock_Uncontended);

// Two tasks alternate on one lock: every acquisition waits for the other task's release.
void BM_Lock_HandOver(benchmark::State& state) {
  tulipa::run([](benchmark::State& st) -> Coro<void> {
    tulipa::Lock lock;
    bool done = false;
    auto other = tulipa::create_task([](tulipa::Lock& l, bool& d) -> Coro<void> {
      while (!d) {
        co_await l.acquire();
        co_await tulipa::sleep(std::chrono::nanoseconds(0));
        l.release();
      }
    }(lock, done));
    for (auto _ : st) {
      co_await lock.acquire();
      co_await tulipa::sleep(std::chrono::nanoseconds(0));
      lock.release();
    }
    done = true;
    co_await other;
  }(state));
}
BENCHMARK(BM_Lock_HandOver);

void BM_Queue_PutGetNowait(benchmark::State& state) {
  tulipa::run([](benchmark::State& st) -> Coro<void> {
    tulipa::Queue<int> q;
    int v = 0;
    for (auto _ : st) {
      q.put_nowait(v);
      v = q.get_nowait() + 1;
    }
    benchmark::DoNotOptimize(v);
    co_return;
  }(state));
}
BENCHMARK(BM_Queue_PutGetNowait);

void BM_Queue_AwaitPutGet(benchmark::State& state) {
  tulipa::run([](benchmark::State& st) -> Coro<void> {
    tulipa::Queue<int> q;
    int v = 0;
    for (auto _ : st) {
      co_await q.put(v);
      v = co_await q.get() + 1;
    }
    benchmark::DoNotOptimize(v);
  }(state));
}
BENCHMARK(BM_Queue_AwaitPutGet);

// A producer and a consumer task through a queue of size 1: every item is a wake-up on each side.
void BM_Queue_ProducerConsumer(benchmark::State& state) {
  tulipa::run([](benchmark::State& st) -> Coro<void> {
    tulipa::Queue<int> q(1);
    auto consumer = tulipa::create_task([](tulipa::Queue<int>& qq) -> Coro<void> {
      for (;;) {
        if (co_await qq.get() < 0) co_return;
      }
    }(q));
    int v = 0;
    for (auto _ : st) co_await q.put(v++);
    co_await q.put(-1);
    co_await consumer;
    st.SetItemsProcessed(st.iterations());
  }(state));
}
BENCHMARK(BM_Queue_ProducerConsumer);

}  // namespace

BENCHMARK_MAIN();
