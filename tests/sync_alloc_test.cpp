// Waiting on locks, semaphores, conditions and queues allocates nothing in steady state: waiter nodes live in the
// awaiters (in coroutine frames), Condition/Queue coroutine frames come from the frame allocator's free lists, and
// the FIFO queue's ring only grows. Counted with a replaced global operator new (this executable only).
#include <gtest/gtest.h>

#include "tulipa/coro.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>

#include "tulipa/queue.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"

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
using tulipa::Coro;

namespace {

// Two tasks contend for `rounds` rounds each; the count covers only the rounds after the first `warmup`.
template <class Body>
long allocations_in_steady_state(Body body) {
  long counted = -1;
  tulipa::run([](Body& b, long& out) -> Coro<void> {
    long before = 0;
    co_await b(100, [&] { before = g_allocations.load(); });
    out = g_allocations.load() - before;
  }(body, counted));
  return counted;
}

TEST(SyncAlloc, ContendedLockAllocatesNothing) {
  if (!tulipa::detail::frame_cache_enabled) GTEST_SKIP() << "sanitizer build: frames are not recycled";
  long n = allocations_in_steady_state([](int warmup, auto mark) -> Coro<void> {
    tulipa::Lock lock;
    auto worker = [](tulipa::Lock& l, int rounds) -> Coro<void> {
      for (int i = 0; i < rounds; ++i) {
        co_await l.acquire();
        co_await tulipa::sleep(0ns);  // hold it across a pass: the other task queues
        l.release();
      }
    };
    auto a = tulipa::create_task(worker(lock, warmup));
    auto b = tulipa::create_task(worker(lock, warmup));
    co_await a;
    co_await b;
    a = {};  // the finished tasks' blocks go back to the free lists before the measured round takes them
    b = {};
    mark();
    a = tulipa::create_task(worker(lock, 1000));  // task states and frames reuse the warm-up's freed blocks
    b = tulipa::create_task(worker(lock, 1000));
    co_await a;
    co_await b;
  });
  EXPECT_EQ(n, 0);
}

TEST(SyncAlloc, QueueProducerConsumerAllocatesNothing) {
  if (!tulipa::detail::frame_cache_enabled) GTEST_SKIP() << "sanitizer build: frames are not recycled";
  long n = allocations_in_steady_state([](int warmup, auto mark) -> Coro<void> {
    tulipa::Queue<int> q(8);
    auto producer = [](tulipa::Queue<int>& qq, int items) -> Coro<void> {
      for (int i = 0; i < items; ++i) co_await qq.put(i);
    };
    auto consumer = [](tulipa::Queue<int>& qq, int items) -> Coro<void> {
      for (int i = 0; i < items; ++i) {
        (void)co_await qq.get();
        qq.task_done();
      }
    };
    auto p = tulipa::create_task(producer(q, warmup));
    auto c = tulipa::create_task(consumer(q, warmup));
    co_await p;
    co_await c;
    p = {};
    c = {};
    mark();
    p = tulipa::create_task(producer(q, 5000));
    c = tulipa::create_task(consumer(q, 5000));
    co_await p;
    co_await c;
    co_await q.join();
  });
  EXPECT_EQ(n, 0);
}

TEST(SyncAlloc, SemaphoreAndConditionAllocateNothing) {
  if (!tulipa::detail::frame_cache_enabled) GTEST_SKIP() << "sanitizer build: frames are not recycled";
  long n = allocations_in_steady_state([](int warmup, auto mark) -> Coro<void> {
    tulipa::Semaphore sem(1);
    tulipa::Condition cond;
    int turn = 0;
    auto worker = [](tulipa::Semaphore& s, tulipa::Condition& c, int& t, int me, int rounds) -> Coro<void> {
      for (int i = 0; i < rounds; ++i) {
        co_await s.acquire();
        co_await tulipa::sleep(0ns);
        s.release();
        auto held = co_await c.scoped();
        co_await c.wait_for([&] { return t == me; });  // strict alternation through the condition
        t = 1 - me;
        c.notify_all();
      }
    };
    auto a = tulipa::create_task(worker(sem, cond, turn, 0, warmup));
    auto b = tulipa::create_task(worker(sem, cond, turn, 1, warmup));
    co_await a;
    co_await b;
    a = {};  // the finished tasks' blocks go back to the free lists before the measured round takes them
    b = {};
    mark();
    a = tulipa::create_task(worker(sem, cond, turn, 0, 1000));
    b = tulipa::create_task(worker(sem, cond, turn, 1, 1000));
    co_await a;
    co_await b;
  });
  EXPECT_EQ(n, 0);
}

}  // namespace
