// run_coroutine_threadsafe and to_thread: what one cross-thread call costs.
//
// Reference: asyncio's run_coroutine_threadsafe costs 100-150 µs a call (CPython issue 98984).
//   BM_RunCoroutineThreadsafe_RoundTrip: one call, then block on result(): the latency a thread sees, including
//     waking the loop out of epoll_wait and the futex wake-up back (two context switches).
//   BM_RunCoroutineThreadsafe_Batch: 64 calls, then their results: the cost per call when calls overlap (the loop
//     stays awake and takes the batch in one pass; results mostly arrive before the caller waits).
//   BM_ToThread_RoundTrip: from a task, co_await to_thread(trivial): the loop -> worker -> loop round trip.
#include <benchmark/benchmark.h>

#include <future>
#include <thread>
#include <vector>

#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"
#include "tulipa/threadsafe.hpp"
#include "tulipa/to_thread.hpp"

namespace {

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
  tulipa::EventLoop& loop() { return loop_; }

 private:
  tulipa::EventLoop loop_;
  std::thread thread_;
};

tulipa::Coro<int> answer(int v) { co_return v + 1; }

void BM_RunCoroutineThreadsafe_RoundTrip(benchmark::State& state) {
  LoopThread lt;
  int v = 0;
  for (auto _ : state) {
    v = tulipa::run_coroutine_threadsafe(answer(v), lt.loop()).result();
  }
  benchmark::DoNotOptimize(v);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RunCoroutineThreadsafe_RoundTrip)->UseRealTime();

void BM_RunCoroutineThreadsafe_Batch(benchmark::State& state) {
  LoopThread lt;
  constexpr int batch = 64;
  std::vector<tulipa::ConcurrentFuture<int>> futures;
  futures.reserve(batch);
  long sum = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) futures.push_back(tulipa::run_coroutine_threadsafe(answer(i), lt.loop()));
    for (auto& f : futures) sum += f.result();
    futures.clear();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_RunCoroutineThreadsafe_Batch)->UseRealTime();

void BM_ToThread_RoundTrip(benchmark::State& state) {
  tulipa::run([](benchmark::State& st) -> tulipa::Coro<void> {
    int v = 0;
    for (auto _ : st) v = co_await tulipa::to_thread([](int x) { return x + 1; }, v);
    benchmark::DoNotOptimize(v);
    st.SetItemsProcessed(st.iterations());
  }(state));
}
BENCHMARK(BM_ToThread_RoundTrip)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
