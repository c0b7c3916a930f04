// The event loop's scheduling costs, next to the same operations on libuv in the same binary and run:
//   - a callback scheduled and run:  tulipa call_soon + run_once   vs  libuv uv_timer_start(…, 0, 0) + uv_run(NOWAIT)
//     (libuv has no call_soon; a zero-timeout one-shot timer is how libuv users schedule "soon"), and uv_idle;
//   - a timer scheduled and cancelled, with 0 and with 1,000,000 other timers pending:
//     tulipa call_later + TimerHandle::cancel  vs  uv_timer_start + uv_timer_stop;
//   - a cross-thread wake-up: call_soon_threadsafe vs uv_async_send, each picked up by its loop.
// Each benchmark reports ns per operation (items_per_second's inverse); compare rows in the same run.
#include <benchmark/benchmark.h>
#include <uv.h>

#include <memory>
#include <random>
#include <vector>

#include "tulipa/loop.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int batch = 1000;

// ---------------------------------------------------------------- a callback scheduled and run

void BM_tulipa_call_soon_run(benchmark::State& state) {
  tulipa::EventLoop loop;
  long ran = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) loop.call_soon([&ran] { ++ran; });
    loop.run_once();
  }
  benchmark::DoNotOptimize(ran);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_tulipa_call_soon_run);

void BM_libuv_timer0_run(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<uv_timer_t> timers(batch);
  long ran = 0;
  for (auto& t : timers) {
    uv_timer_init(&loop, &t);
    t.data = &ran;
  }
  for (auto _ : state) {
    for (auto& t : timers) uv_timer_start(&t, [](uv_timer_t* h) { ++*static_cast<long*>(h->data); }, 0, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  benchmark::DoNotOptimize(ran);
  for (auto& t : timers) uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_libuv_timer0_run);

// uv_idle: a callback per handle per loop iteration (the handle stays scheduled, so no scheduling cost at all).
void BM_libuv_idle_run(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<uv_idle_t> idles(batch);
  long ran = 0;
  for (auto& h : idles) {
    uv_idle_init(&loop, &h);
    h.data = &ran;
    uv_idle_start(&h, [](uv_idle_t* i) { ++*static_cast<long*>(i->data); });
  }
  for (auto _ : state) uv_run(&loop, UV_RUN_NOWAIT);
  benchmark::DoNotOptimize(ran);
  for (auto& h : idles) uv_close(reinterpret_cast<uv_handle_t*>(&h), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_libuv_idle_run);

// ---------------------------------------------------------------- timer schedule + cancel

// state.range(0): how many other timers are pending meanwhile (at random deadlines over an hour).
void BM_tulipa_timer_start_cancel(benchmark::State& state) {
  tulipa::VirtualClock clock;
  tulipa::LoopOptions o;
  o.clock = &clock;
  tulipa::EventLoop loop(std::move(o));
  std::mt19937_64 rng(42);
  std::vector<tulipa::TimerHandle> background;
  background.reserve(static_cast<size_t>(state.range(0)));
  for (long i = 0; i < state.range(0); ++i)
    background.push_back(loop.call_later(tulipa::Duration(rng() % 3600'000'000'000ull), [] {}));
  std::vector<tulipa::TimerHandle> handles(batch);
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) handles[i] = loop.call_later(tulipa::Duration(rng() % 3600'000'000'000ull), [] {});
    for (auto& h : handles) h.cancel();
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_tulipa_timer_start_cancel)->Arg(0)->Arg(1'000'000);

void BM_libuv_timer_start_stop(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::mt19937_64 rng(42);
  auto background = std::make_unique<uv_timer_t[]>(static_cast<size_t>(state.range(0)));
  for (long i = 0; i < state.range(0); ++i) {
    uv_timer_init(&loop, &background[i]);
    uv_timer_start(&background[i], [](uv_timer_t*) {}, rng() % 3600'000, 0);
  }
  std::vector<uv_timer_t> timers(batch);
  for (auto& t : timers) uv_timer_init(&loop, &t);
  for (auto _ : state) {
    for (auto& t : timers) uv_timer_start(&t, [](uv_timer_t*) {}, rng() % 3600'000, 0);
    for (auto& t : timers) uv_timer_stop(&t);
  }
  for (long i = 0; i < state.range(0); ++i) uv_close(reinterpret_cast<uv_handle_t*>(&background[i]), nullptr);
  for (auto& t : timers) uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_libuv_timer_start_stop)->Arg(0)->Arg(1'000'000);

// Timers that fire: schedule N with spread deadlines, then let them all run (one-shot timer throughput).
void BM_tulipa_timers_fire(benchmark::State& state) {
  tulipa::VirtualClock clock;
  tulipa::LoopOptions o;
  o.clock = &clock;
  tulipa::EventLoop loop(std::move(o));
  long ran = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) loop.call_later(tulipa::Duration(1 + i % 97), [&ran] { ++ran; });
    clock.advance(1ms);
    loop.run_once();
  }
  benchmark::DoNotOptimize(ran);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_tulipa_timers_fire);

// ---------------------------------------------------------------- cross-thread wake-up, loop already awake

void BM_tulipa_call_soon_threadsafe(benchmark::State& state) {
  tulipa::EventLoop loop;
  long ran = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) loop.call_soon_threadsafe([&ran] { ++ran; });
    loop.run_once();
  }
  benchmark::DoNotOptimize(ran);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_tulipa_call_soon_threadsafe);

void BM_libuv_async_send(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_async_t async;
  long ran = 0;
  async.data = &ran;
  uv_async_init(&loop, &async, [](uv_async_t* a) { ++*static_cast<long*>(a->data); });
  for (auto _ : state) {
    // libuv coalesces sends: a batch of sends is one callback; each send is still one atomic + possibly a write.
    for (int i = 0; i < batch; ++i) uv_async_send(&async);
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  benchmark::DoNotOptimize(ran);
  uv_close(reinterpret_cast<uv_handle_t*>(&async), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_libuv_async_send);

}  // namespace

BENCHMARK_MAIN();
