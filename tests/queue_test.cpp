// Queue, PriorityQueue, LifoQueue: asyncio 3.13 semantics (maxsize, nowait errors, task_done/join, shutdown),
// FIFO fairness of waiters, and cancellation of waiting getters and putters without losing an item or a wake-up.
#include "tulipa/queue.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/coro_steps.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace std::chrono_literals;
using tulipa::CancelledError;
using tulipa::Coro;
using tulipa::Queue;
using tulipa::Task;

namespace {

using tulipa::test::ends_cancelled;
using tulipa::test::settle;

template <class Q>
Coro<typename Q::value_type> getter(Q& q) {
  co_return co_await q.get();
}

TEST(Queue, NowaitOperationsAndTheirErrors) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q(2);
    EXPECT_EQ(q.maxsize(), 2u);
    EXPECT_TRUE(q.empty());
    EXPECT_THROW(q.get_nowait(), tulipa::QueueEmpty);
    q.put_nowait(1);
    q.put_nowait(2);
    EXPECT_TRUE(q.full());
    EXPECT_EQ(q.qsize(), 2u);
    EXPECT_THROW(q.put_nowait(3), tulipa::QueueFull);
    EXPECT_EQ(q.get_nowait(), 1);
    EXPECT_EQ(co_await q.get(), 2);
    Queue<int> unbounded;
    for (int i = 0; i < 1000; ++i) unbounded.put_nowait(i);
    EXPECT_FALSE(unbounded.full());
  }());
}

TEST(Queue, PriorityAndLifoOrder) {
  tulipa::run([]() -> Coro<void> {
    tulipa::PriorityQueue<std::pair<int, std::string>> pq;
    pq.put_nowait({3, "c"});
    pq.put_nowait({1, "a"});
    pq.put_nowait({2, "b"});
    EXPECT_EQ(pq.get_nowait().second, "a");
    EXPECT_EQ((co_await pq.get()).second, "b");
    EXPECT_EQ(pq.get_nowait().second, "c");
    tulipa::PriorityQueue<int, std::greater<int>> maxq;
    for (int v : {5, 9, 1}) maxq.put_nowait(v);
    EXPECT_EQ(maxq.get_nowait(), 9);
    tulipa::LifoQueue<int> lifo;
    for (int v : {1, 2, 3}) lifo.put_nowait(v);
    EXPECT_EQ(lifo.get_nowait(), 3);
    EXPECT_EQ(lifo.get_nowait(), 2);
  }());
}

TEST(Queue, MoveOnlyItems) {
  tulipa::run([]() -> Coro<void> {
    Queue<std::unique_ptr<int>> q(1);
    co_await q.put(std::make_unique<int>(7));
    auto p = co_await q.get();
    EXPECT_EQ(*p, 7);
  }());
}

TEST(Queue, GettersAreServedInFifoOrder) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q;
    std::vector<Task<int>> getters;
    for (int i = 0; i < 3; ++i) getters.push_back(tulipa::create_task(getter(q)));
    co_await settle();
    EXPECT_EQ(q.getters_waiting(), 3u);
    for (int v : {10, 20, 30}) q.put_nowait(v);
    EXPECT_EQ(co_await getters[0], 10);
    EXPECT_EQ(co_await getters[1], 20);
    EXPECT_EQ(co_await getters[2], 30);
  }());
}

TEST(Queue, PuttersWaitWhileFullAndAreServedInFifoOrder) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q(1);
    q.put_nowait(0);
    std::vector<Task<void>> putters;
    for (int i = 1; i <= 3; ++i) {
      putters.push_back(tulipa::create_task([](Queue<int>& qq, int v) -> Coro<void> { co_await qq.put(v); }(q, i)));
    }
    co_await settle();
    EXPECT_EQ(q.putters_waiting(), 3u);
    std::vector<int> got;
    for (int i = 0; i < 4; ++i) got.push_back(co_await q.get());
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
    for (auto& p : putters) co_await p;
  }());
}

TEST(Queue, CancellingAWaitingGetterLosesNoItem) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q;
    auto a = tulipa::create_task(getter(q));
    auto b = tulipa::create_task(getter(q));
    co_await settle();
    a.cancel();  // suspended in get(): leaves the waiters
    co_await settle();
    EXPECT_TRUE(ends_cancelled(a));
    EXPECT_EQ(q.getters_waiting(), 1u);
    q.put_nowait(42);
    EXPECT_EQ(co_await b, 42);
    EXPECT_TRUE(q.empty());
  }());
}

TEST(Queue, AGetterCancelledAfterItsWakeUpPassesItOnAndTheItemStays) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q;
    auto a = tulipa::create_task(getter(q));
    auto b = tulipa::create_task(getter(q));
    co_await settle();
    q.put_nowait(42);  // wakes `a`...
    a.cancel();        // ...cancelled before it ran: it raises without taking the item and wakes `b`
    EXPECT_EQ(co_await b, 42);
    EXPECT_TRUE(ends_cancelled(a));
    EXPECT_TRUE(q.empty());
    // Alone: the item simply stays in the queue.
    auto c = tulipa::create_task(getter(q));
    co_await settle();
    q.put_nowait(7);
    c.cancel();
    co_await settle();
    EXPECT_TRUE(ends_cancelled(c));
    EXPECT_EQ(q.qsize(), 1u);
    EXPECT_EQ(q.get_nowait(), 7);
  }());
}

TEST(Queue, CancellingAWaitingPutterPutsNothingAndLosesNoSlot) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q(1);
    q.put_nowait(0);
    auto a = tulipa::create_task([](Queue<int>& qq) -> Coro<void> { co_await qq.put(1); }(q));
    auto b = tulipa::create_task([](Queue<int>& qq) -> Coro<void> { co_await qq.put(2); }(q));
    co_await settle();
    a.cancel();
    co_await settle();
    EXPECT_TRUE(ends_cancelled(a));
    EXPECT_EQ(q.get_nowait(), 0);  // frees the slot: wakes `b`, not the cancelled `a`
    co_await b;
    EXPECT_EQ(q.get_nowait(), 2);
    EXPECT_TRUE(q.empty());
  }());
}

TEST(Queue, APutterCancelledAfterItsWakeUpPassesTheSlotOn) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q(1);
    q.put_nowait(0);
    auto a = tulipa::create_task([](Queue<int>& qq) -> Coro<void> { co_await qq.put(1); }(q));
    auto b = tulipa::create_task([](Queue<int>& qq) -> Coro<void> { co_await qq.put(2); }(q));
    co_await settle();
    EXPECT_EQ(q.get_nowait(), 0);  // wakes `a`...
    a.cancel();                    // ...which raises instead, handing the free slot to `b`
    co_await b;
    EXPECT_TRUE(ends_cancelled(a));
    EXPECT_EQ(q.get_nowait(), 2);
    EXPECT_TRUE(q.empty());
  }());
}

TEST(Queue, TaskDoneAndJoin) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q;
    EXPECT_THROW(q.task_done(), std::logic_error);
    co_await q.join();  // nothing unfinished: returns at once
    for (int i = 0; i < 3; ++i) q.put_nowait(i);
    EXPECT_EQ(q.unfinished_tasks(), 3u);
    int processed = 0;
    auto worker = tulipa::create_task([](Queue<int>& qq, int& n) -> Coro<void> {
      for (;;) {
        (void)co_await qq.get();
        co_await tulipa::sleep(0ns);
        ++n;
        qq.task_done();
      }
    }(q, processed));
    co_await q.join();
    EXPECT_EQ(processed, 3);
    EXPECT_EQ(q.unfinished_tasks(), 0u);
    worker.cancel();  // suspended in get(): cancellable there
    co_await settle();
    EXPECT_TRUE(ends_cancelled(worker));
  }());
}

TEST(Queue, AJoinerCanBeCancelledWhileSuspended) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q;
    q.put_nowait(1);
    auto joiner = tulipa::create_task([](Queue<int>& qq) -> Coro<void> { co_await qq.join(); }(q));
    co_await settle();
    EXPECT_FALSE(joiner.done());
    joiner.cancel();
    co_await settle();
    EXPECT_TRUE(ends_cancelled(joiner));
    EXPECT_EQ(q.unfinished_tasks(), 1u);
  }());
}

TEST(Queue, ShutdownRefusesPutsWakesPuttersAndLetsGettersDrain) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q(1);
    q.put_nowait(1);
    auto putter = tulipa::create_task([](Queue<int>& qq) -> Coro<void> { co_await qq.put(2); }(q));
    co_await settle();
    q.shutdown();
    EXPECT_TRUE(q.is_shutdown());
    bool putter_shut = false;
    try {
      co_await putter;
    } catch (const tulipa::QueueShutDown&) {
      putter_shut = true;
    }
    EXPECT_TRUE(putter_shut);
    EXPECT_THROW(q.put_nowait(3), tulipa::QueueShutDown);
    EXPECT_EQ(co_await q.get(), 1);  // what was queued can still be taken
    EXPECT_THROW(q.get_nowait(), tulipa::QueueShutDown);
    bool get_shut = false;
    try {
      (void)co_await q.get();
    } catch (const tulipa::QueueShutDown&) {
      get_shut = true;
    }
    EXPECT_TRUE(get_shut);
  }());
}

TEST(Queue, ShutdownWakesWaitingGettersWithQueueShutDown) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q;
    auto a = tulipa::create_task(getter(q));
    auto b = tulipa::create_task(getter(q));
    co_await settle();
    q.shutdown();
    int shut = 0;
    for (auto* t : {&a, &b}) {
      try {
        (void)co_await *t;
      } catch (const tulipa::QueueShutDown&) {
        ++shut;
      }
    }
    EXPECT_EQ(shut, 2);
  }());
}

TEST(Queue, ImmediateShutdownDropsItemsAndReleasesJoiners) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q;
    for (int i = 0; i < 3; ++i) q.put_nowait(i);
    auto joiner = tulipa::create_task([](Queue<int>& qq) -> Coro<void> { co_await qq.join(); }(q));
    co_await settle();
    EXPECT_FALSE(joiner.done());
    q.shutdown(true);
    co_await joiner;
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.unfinished_tasks(), 0u);
    EXPECT_THROW(q.get_nowait(), tulipa::QueueShutDown);
  }());
}

TEST(Queue, ImmediateShutdownKeepsCountsOfItemsAlreadyTaken) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q;
    for (int i = 0; i < 3; ++i) q.put_nowait(i);
    (void)q.get_nowait();  // taken, not yet task_done
    q.shutdown(true);      // drops the other two
    EXPECT_EQ(q.unfinished_tasks(), 1u);
    auto joiner = tulipa::create_task([](Queue<int>& qq) -> Coro<void> { co_await qq.join(); }(q));
    co_await settle();
    EXPECT_FALSE(joiner.done());
    q.task_done();
    co_await joiner;
  }());
}

TEST(Queue, ProducersAndConsumersMoveEveryItemExactlyOnce) {
  tulipa::run([]() -> Coro<void> {
    Queue<int> q(4);
    constexpr int producers = 3, per_producer = 200, consumers = 4;
    std::vector<int> seen(producers * per_producer, 0);
    std::vector<Task<void>> tasks;
    for (int p = 0; p < producers; ++p) {
      tasks.push_back(tulipa::create_task([](Queue<int>& qq, int base) -> Coro<void> {
        for (int i = 0; i < per_producer; ++i) co_await qq.put(base + i);
      }(q, p * per_producer)));
    }
    std::vector<Task<void>> eaters;
    for (int c = 0; c < consumers; ++c) {
      eaters.push_back(tulipa::create_task([](Queue<int>& qq, std::vector<int>& s) -> Coro<void> {
        for (;;) {
          int v = co_await qq.get();
          ++s.at(v);
          qq.task_done();
        }
      }(q, seen)));
    }
    for (auto& t : tasks) co_await t;
    co_await q.join();
    q.shutdown();
    for (auto& e : eaters) {
      try {
        co_await e;
      } catch (const tulipa::QueueShutDown&) {
      }
    }
    for (int v : seen) EXPECT_EQ(v, 1);
  }());
}

}  // namespace
