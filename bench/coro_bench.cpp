// Coroutine micro-benchmarks: tulipa next to standalone Asio (co_spawn, awaitable) in the same binary, same run.
//
// Pairs (items/s; compare the two lines of a pair):
//   SpawnComplete        create_task(trivial coroutine) + run to completion    | co_spawn(detached) + io_context.run
//   AwaitImmediateCoro   co_await of a coroutine that returns at once          | co_await of an awaitable<int> likewise
//   DeepChain1000        a 1,000-deep chain of awaits (frames + transfers)     | the same with asio::awaitable
//   Gather10k            gather() of 10,000 tasks                              | 10,000 co_spawns + a wait-group
//   Cancel10kSleeping    10,000 tasks asleep, each cancelled, run to the end   | 10,000 timers' coroutines, cancelled
//                                                                                by a per-coroutine cancellation_signal
// tulipa only (Asio has no future type): AwaitReadyFuture, co_await of an already-completed Future<int>.
// The label of tulipa's SpawnComplete run reports the frame of a typical connection handler (bytes).
#include <benchmark/benchmark.h>

#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tulipa/combinators.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace std::chrono_literals;

namespace {

// ------------------------------------------------------------------------------------------------ tulipa

tulipa::Coro<int> t_trivial(int v) { co_return v; }

void drain(tulipa::EventLoop& loop) {
  while (loop.ready_count() > 0) loop.run_once();
}

// A connection handler's shape (asyncio's echo: read, write, drain, until EOF), with the stream operations stood in
// for by futures, to size its frame.
tulipa::Coro<void> t_handler(tulipa::Future<std::size_t> read_done, tulipa::Future<void> drained, int fd) {
  std::uint64_t bytes = 0;
  int rounds = 0;
  for (;;) {
    std::size_t n = co_await read_done;
    if (n == 0) break;
    bytes += n;
    ++rounds;
    co_await drained;
    if (rounds > 0) break;
  }
  (void)fd;
  (void)bytes;
}

std::size_t handler_frame_size(tulipa::EventLoop& loop) {
  tulipa::Future<std::size_t> r(loop);
  tulipa::Future<void> d(loop);
  auto c = t_handler(r, d, 3);  // allocates the frame
  return tulipa::detail::last_frame_size();
}

void BM_Tulipa_SpawnComplete(benchmark::State& state) {
  tulipa::EventLoop loop;
  const int n = 1000;
  std::vector<tulipa::Task<int>> tasks;
  tasks.reserve(n);
  auto round = [&] {
    for (int i = 0; i < n; ++i) tasks.push_back(tulipa::create_task(loop, t_trivial(i)));
    drain(loop);
    tasks.clear();
  };
  round();  // warm-up: fills the frame cache and the loop's handle pool
  const auto frames_before = tulipa::detail::frame_allocations();
  for (auto _ : state) round();
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["handler_frame_bytes"] = double(handler_frame_size(loop));
  // Frame-allocator misses during the timed rounds (steady state: 0).
  state.counters["frame_heap_allocs"] = double(tulipa::detail::frame_allocations() - frames_before);
}

void BM_Tulipa_AwaitReadyFuture(benchmark::State& state) {
  tulipa::EventLoop loop;
  tulipa::Future<int> f(loop);
  f.set_result(1);
  const int n = 10000;
  for (auto _ : state) {
    auto body = [&]() -> tulipa::Coro<int> {
      int s = 0;
      for (int i = 0; i < n; ++i) s += co_await f;
      co_return s;
    };
    benchmark::DoNotOptimize(tulipa::run_until_complete(loop, body()));
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_Tulipa_AwaitImmediateCoro(benchmark::State& state) {
  tulipa::EventLoop loop;
  const int n = 10000;
  for (auto _ : state) {
    auto body = [&]() -> tulipa::Coro<int> {
      int s = 0;
      for (int i = 0; i < n; ++i) s += co_await t_trivial(i);
      co_return s;
    };
    benchmark::DoNotOptimize(tulipa::run_until_complete(loop, body()));
  }
  state.SetItemsProcessed(state.iterations() * n);
}

tulipa::Coro<int> t_deep(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await t_deep(depth - 1);
}

void BM_Tulipa_DeepChain1000(benchmark::State& state) {
  tulipa::EventLoop loop;
  for (auto _ : state) benchmark::DoNotOptimize(tulipa::run_until_complete(loop, t_deep(1000)));
  state.SetItemsProcessed(state.iterations() * 1000);
}

void BM_Tulipa_Gather10k(benchmark::State& state) {
  tulipa::EventLoop loop;
  const int n = 10000;
  for (auto _ : state) {
    auto body = [&]() -> tulipa::Coro<std::size_t> {
      std::vector<tulipa::Task<int>> tasks;
      tasks.reserve(n);
      for (int i = 0; i < n; ++i) tasks.push_back(tulipa::create_task(t_trivial(i)));
      auto results = co_await tulipa::gather(std::move(tasks));
      co_return results.size();
    };
    benchmark::DoNotOptimize(tulipa::run_until_complete(loop, body()));
  }
  state.SetItemsProcessed(state.iterations() * n);
}

tulipa::Coro<void> t_sleeper() { co_await tulipa::sleep(1h); }

void BM_Tulipa_Cancel10kSleeping(benchmark::State& state) {
  tulipa::EventLoop loop;
  const int n = 10000;
  std::vector<tulipa::Task<void>> tasks;
  tasks.reserve(n);
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) tasks.push_back(tulipa::create_task(loop, t_sleeper()));
    drain(loop);  // all asleep
    for (auto& t : tasks) t.cancel();
    drain(loop);  // all finished, cancelled
    tasks.clear();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// ------------------------------------------------------------------------------------------------ Asio

asio::awaitable<int> a_trivial(int v) { co_return v; }

void BM_Asio_SpawnComplete(benchmark::State& state) {
  asio::io_context io(1);
  const int n = 1000;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) asio::co_spawn(io, a_trivial(i), asio::detached);
    io.run();
    io.restart();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_Asio_AwaitImmediateCoro(benchmark::State& state) {
  asio::io_context io(1);
  const int n = 10000;
  for (auto _ : state) {
    int result = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          int s = 0;
          for (int i = 0; i < n; ++i) s += co_await a_trivial(i);
          result = s;
        },
        asio::detached);
    io.run();
    io.restart();
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations() * n);
}

asio::awaitable<int> a_deep(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await a_deep(depth - 1);
}

void BM_Asio_DeepChain1000(benchmark::State& state) {
  asio::io_context io(1);
  for (auto _ : state) {
    int result = 0;
    asio::co_spawn(io, a_deep(1000), [&](std::exception_ptr, int v) { result = v; });
    io.run();
    io.restart();
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

// Asio 1.22 has no gather (nor a ranged parallel_group): the idiom is a counter and a timer used as an event.
void BM_Asio_Gather10k(benchmark::State& state) {
  asio::io_context io(1);
  const int n = 10000;
  for (auto _ : state) {
    std::size_t got = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          std::vector<int> results(n);
          int pending = n;
          asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
          for (int i = 0; i < n; ++i) {
            asio::co_spawn(ex, a_trivial(i), [&, i](std::exception_ptr, int v) {
              results[i] = v;
              if (--pending == 0) all_done.cancel();
            });
          }
          asio::error_code ec;
          co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
          got = results.size();
        },
        asio::detached);
    io.run();
    io.restart();
    benchmark::DoNotOptimize(got);
  }
  state.SetItemsProcessed(state.iterations() * n);
}

asio::awaitable<void> a_sleeper() {
  asio::steady_timer t(co_await asio::this_coro::executor, 1h);
  co_await t.async_wait(asio::use_awaitable);
}

void BM_Asio_Cancel10kSleeping(benchmark::State& state) {
  asio::io_context io(1);
  const int n = 10000;
  std::vector<asio::cancellation_signal> signals(n);
  for (auto _ : state) {
    int finished = 0;
    for (int i = 0; i < n; ++i)
      asio::co_spawn(io, a_sleeper(),
                     asio::bind_cancellation_slot(signals[i].slot(), [&](std::exception_ptr) { ++finished; }));
    io.poll();  // all asleep
    for (auto& s : signals) s.emit(asio::cancellation_type::terminal);
    io.run();
    io.restart();
    benchmark::DoNotOptimize(finished);
  }
  state.SetItemsProcessed(state.iterations() * n);
}

}  // namespace

BENCHMARK(BM_Tulipa_SpawnComplete);
BENCHMARK(BM_Asio_SpawnComplete);
BENCHMARK(BM_Tulipa_AwaitImmediateCoro);
BENCHMARK(BM_Asio_AwaitImmediateCoro);
BENCHMARK(BM_Tulipa_AwaitReadyFuture);
BENCHMARK(BM_Tulipa_DeepChain1000);
BENCHMARK(BM_Asio_DeepChain1000);
BENCHMARK(BM_Tulipa_Gather10k);
BENCHMARK(BM_Asio_Gather10k);
BENCHMARK(BM_Tulipa_Cancel10kSleeping);
BENCHMARK(BM_Asio_Cancel10kSleeping);

BENCHMARK_MAIN();
