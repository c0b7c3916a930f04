// Scheduling allocates nothing in steady state: handles come from the loop's pool and small callables are stored
// inline. Counted with a replaced global operator new (this executable only).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "tulipa/loop.hpp"

namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// noinline: inlined, g++ 12 sees free() on what operator new returned and warns (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace std::chrono_literals;

namespace {

TEST(LoopAlloc, CallSoonAndRunAllocateNothingInSteadyState) {
  tulipa::EventLoop loop;
  int ran = 0;
  auto round = [&] {
    for (int i = 0; i < 1000; ++i) loop.call_soon([&ran, i, p = &loop] { ran += i > 0 || p; });
    loop.run_once();
  };
  round();  // warm-up: the pool grows to 1000 nodes
  long before = g_allocations.load();
  for (int r = 0; r < 10; ++r) round();
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(ran, 11000);
}

TEST(LoopAlloc, TimerScheduleAndCancelAllocateNothingInSteadyState) {
  tulipa::VirtualClock clock;
  tulipa::LoopOptions o;
  o.clock = &clock;
  tulipa::EventLoop loop(std::move(o));
  std::vector<tulipa::TimerHandle> handles(1000);
  auto round = [&] {
    for (int i = 0; i < 1000; ++i) handles[i] = loop.call_later(1s + i * 1us, [] {});
    for (auto& h : handles) h.cancel();
  };
  round();
  long before = g_allocations.load();
  for (int r = 0; r < 10; ++r) round();
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(loop.timer_count(), 0u);
}

TEST(LoopAlloc, LargeCallablesGoToTheHeap) {
  struct Big {
    char bytes[200];
    void operator()() {}
  };
  tulipa::Callback small([] {});
  tulipa::Callback big(Big{});
  EXPECT_FALSE(small.is_heap_allocated());
  EXPECT_TRUE(big.is_heap_allocated());
}

}  // namespace
