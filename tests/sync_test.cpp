// Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier: asyncio 3.13 semantics, FIFO fairness, and
// cancellation of every kind of waiter while it is suspended (no lost wake-up).
#include "tulipa/sync.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/coro_steps.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace std::chrono_literals;
using tulipa::CancelledError;
using tulipa::Coro;
using tulipa::Task;

namespace {

using tulipa::test::ends_cancelled;
using tulipa::test::settle;

// ------------------------------------------------------------------------------------------------------------ Lock

TEST(Lock, AcquireReleaseAndMisuse) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Lock lock;
    EXPECT_FALSE(lock.locked());
    co_await lock.acquire();
    EXPECT_TRUE(lock.locked());
    lock.release();
    EXPECT_FALSE(lock.locked());
    EXPECT_THROW(lock.release(), std::logic_error);
    {
      auto held = co_await lock.scoped();
      EXPECT_TRUE(held.owns_lock());
      EXPECT_TRUE(lock.locked());
    }
    EXPECT_FALSE(lock.locked());
  }());
}

TEST(Lock, WaitersAcquireInFifoOrder) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Lock lock;
    std::vector<int> order;
    co_await lock.acquire();
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(tulipa::create_task([](tulipa::Lock& l, std::vector<int>& o, int id) -> Coro<void> {
        co_await l.acquire();
        o.push_back(id);
        co_await tulipa::sleep(0ns);  // hold it across a suspension
        l.release();
      }(lock, order, i)));
    }
    co_await settle();
    EXPECT_EQ(lock.waiting(), 5u);
    lock.release();
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_FALSE(lock.locked());
  }());
}

TEST(Lock, AReleasedLockGoesToTheFirstWaiterNotToANewcomer) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Lock lock;
    std::vector<std::string> order;
    co_await lock.acquire();
    auto waiter = tulipa::create_task([](tulipa::Lock& l, std::vector<std::string>& o) -> Coro<void> {
      co_await l.acquire();
      o.push_back("waiter");
      l.release();
    }(lock, order));
    co_await settle();
    lock.release();
    EXPECT_FALSE(lock.locked());  // as asyncio: free, but reserved for the woken waiter
    // A newcomer (this task) does not get it although it is free: it queues behind the waiter.
    co_await lock.acquire();
    order.push_back("newcomer");
    lock.release();
    co_await waiter;
    EXPECT_EQ(order, (std::vector<std::string>{"waiter", "newcomer"}));
  }());
}

TEST(Lock, CancellingAWaitingAcquirerLosesNoWakeUp) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Lock lock;
    std::vector<int> got;
    co_await lock.acquire();
    auto make = [&](int id) {
      return tulipa::create_task([](tulipa::Lock& l, std::vector<int>& g, int i) -> Coro<void> {
        co_await l.acquire();
        g.push_back(i);
        l.release();
      }(lock, got, id));
    };
    auto a = make(1), b = make(2), c = make(3);
    co_await settle();
    EXPECT_EQ(lock.waiting(), 3u);
    b.cancel();  // suspended in acquire(): leaves the queue at once
    co_await settle();
    EXPECT_TRUE(ends_cancelled(b));
    EXPECT_EQ(lock.waiting(), 2u);
    lock.release();
    co_await a;
    co_await c;
    EXPECT_EQ(got, (std::vector<int>{1, 3}));
    EXPECT_FALSE(lock.locked());
  }());
}

TEST(Lock, AWokenWaiterCancelledBeforeItRunsRaisesAndPassesTheLockOn) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Lock lock;
    bool first_got_it = false;
    int got = 0;
    co_await lock.acquire();
    auto first = tulipa::create_task([](tulipa::Lock& l, bool& g) -> Coro<void> {
      co_await l.acquire();
      g = true;
      l.release();
    }(lock, first_got_it));
    auto second = tulipa::create_task([](tulipa::Lock& l, int& g) -> Coro<void> {
      co_await l.acquire();
      g = 2;
      l.release();
    }(lock, got));
    co_await settle();
    lock.release();  // wakes `first`...
    first.cancel();  // ...which is cancelled before it runs: it raises at acquire() and wakes `second` (asyncio)
    co_await second;
    EXPECT_TRUE(ends_cancelled(first));
    EXPECT_FALSE(first_got_it);
    EXPECT_EQ(got, 2);
    EXPECT_FALSE(lock.locked());
  }());
}

TEST(Lock, AWokenWaiterCancelledWithNobodyBehindLeavesTheLockFree) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Lock lock;
    co_await lock.acquire();
    auto waiter = tulipa::create_task([](tulipa::Lock& l) -> Coro<void> { auto held = co_await l.scoped(); }(lock));
    co_await settle();
    lock.release();
    waiter.cancel();
    co_await settle();
    EXPECT_TRUE(ends_cancelled(waiter));
    EXPECT_FALSE(lock.locked());
    EXPECT_EQ(lock.waiting(), 0u);
    co_await lock.acquire();  // nothing lost: the lock is free and takeable at once
    lock.release();
  }());
}

// ----------------------------------------------------------------------------------------------------------- Event

TEST(Event, SetWakesEveryWaiterAndWaitReturnsAtOnceWhileSet) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Event ev;
    int woken = 0;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 4; ++i) {
      tasks.push_back(tulipa::create_task([](tulipa::Event& e, int& w) -> Coro<void> {
        co_await e.wait();
        ++w;
      }(ev, woken)));
    }
    co_await settle();
    EXPECT_EQ(ev.waiting(), 4u);
    EXPECT_EQ(woken, 0);
    ev.set();
    EXPECT_TRUE(ev.is_set());
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(woken, 4);
    co_await ev.wait();  // set: no suspension
    ev.clear();
    EXPECT_FALSE(ev.is_set());
  }());
}

TEST(Event, AWaiterCancelledAfterSetRaises) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Event ev;
    auto a = tulipa::create_task([](tulipa::Event& e) -> Coro<void> { co_await e.wait(); }(ev));
    auto b = tulipa::create_task([](tulipa::Event& e) -> Coro<void> { co_await e.wait(); }(ev));
    co_await settle();
    ev.set();
    a.cancel();  // woken but not yet run: asyncio raises CancelledError at the wait
    co_await b;
    co_await settle();
    EXPECT_TRUE(ends_cancelled(a));
    EXPECT_TRUE(ev.is_set());
  }());
}

TEST(Event, CancellingAWaiterLeavesTheOthersWaiting) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Event ev;
    auto a = tulipa::create_task([](tulipa::Event& e) -> Coro<void> { co_await e.wait(); }(ev));
    auto b = tulipa::create_task([](tulipa::Event& e) -> Coro<void> { co_await e.wait(); }(ev));
    co_await settle();
    a.cancel();
    co_await settle();
    EXPECT_TRUE(ends_cancelled(a));
    EXPECT_EQ(ev.waiting(), 1u);
    ev.set();
    co_await b;
    EXPECT_FALSE(b.cancelled());
  }());
}

// ------------------------------------------------------------------------------------------------------- Condition

TEST(Condition, NotifyWakesWaitersOneByOneInFifoOrder) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Condition cond;
    std::vector<int> order;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 3; ++i) {
      tasks.push_back(tulipa::create_task([](tulipa::Condition& c, std::vector<int>& o, int id) -> Coro<void> {
        auto held = co_await c.scoped();
        co_await c.wait();
        EXPECT_TRUE(c.locked());  // re-acquired before returning
        o.push_back(id);
      }(cond, order, i)));
    }
    co_await settle();
    EXPECT_EQ(cond.waiting(), 3u);
    EXPECT_FALSE(cond.locked());  // each waiter released the lock while waiting
    {
      auto held = co_await cond.scoped();
      cond.notify(1);
    }
    co_await settle();
    EXPECT_EQ(order, (std::vector<int>{0}));
    {
      auto held = co_await cond.scoped();
      cond.notify_all();
    }
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  }());
}

TEST(Condition, WaitAndNotifyNeedTheLock) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Condition cond;
    EXPECT_THROW(cond.notify(), std::logic_error);
    bool threw = false;
    try {
      co_await cond.wait();
    } catch (const std::logic_error&) {
      threw = true;
    }
    EXPECT_TRUE(threw);
  }());
}

TEST(Condition, WaitForChecksThePredicateAfterEachWakeUp) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Condition cond;
    int value = 0;
    auto waiter = tulipa::create_task([](tulipa::Condition& c, int& v) -> Coro<int> {
      auto held = co_await c.scoped();
      co_await c.wait_for([&] { return v >= 3; });
      co_return v;
    }(cond, value));
    for (int i = 1; i <= 3; ++i) {
      co_await settle();
      auto held = co_await cond.scoped();
      value = i;
      cond.notify_all();
    }
    EXPECT_EQ(co_await waiter, 3);
  }());
}

TEST(Condition, ACancelledWaiterReacquiresTheLockBeforeRaising) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Condition cond;
    bool locked_in_handler = false;
    auto waiter = tulipa::create_task([](tulipa::Condition& c, bool& locked) -> Coro<void> {
      co_await c.acquire();
      try {
        co_await c.wait();
      } catch (const CancelledError&) {
        locked = c.locked();
        c.release();
        throw;
      }
    }(cond, locked_in_handler));
    co_await settle();
    co_await cond.acquire();  // hold the lock while cancelling: the waiter must wait for it before raising
    waiter.cancel();
    co_await settle();
    EXPECT_FALSE(waiter.done());
    cond.release();
    co_await settle();
    EXPECT_TRUE(ends_cancelled(waiter));
    EXPECT_TRUE(locked_in_handler);
    EXPECT_FALSE(cond.locked());
  }());
}

TEST(Condition, ANotifiedWaiterThatIsCancelledPassesTheNotificationOn) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Condition cond;
    bool second_woke = false;
    auto first = tulipa::create_task([](tulipa::Condition& c) -> Coro<void> {
      auto held = co_await c.scoped();
      co_await c.wait();
    }(cond));
    auto second = tulipa::create_task([](tulipa::Condition& c, bool& woke) -> Coro<void> {
      auto held = co_await c.scoped();
      co_await c.wait();
      woke = true;
    }(cond, second_woke));
    co_await settle();
    co_await cond.acquire();
    cond.notify(1);     // wakes `first` only; the cancellation reaches it at its next suspension point, which is
    first.cancel();     // the re-acquisition of the lock we still hold: it fails there, and 3.13 makes it notify
    co_await settle();  // `second` instead once it has the lock back
    EXPECT_FALSE(first.done());
    cond.release();
    co_await settle();
    EXPECT_TRUE(ends_cancelled(first));
    co_await second;
    EXPECT_TRUE(second_woke);
  }());
}

TEST(Condition, SharesAnExternalLock) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Lock lock;
    tulipa::Condition cond(lock);
    co_await cond.acquire();
    EXPECT_TRUE(lock.locked());
    lock.release();
    EXPECT_FALSE(cond.locked());
    EXPECT_EQ(&cond.lock(), &lock);
  }());
}

// ------------------------------------------------------------------------------------------------------- Semaphore

TEST(Semaphore, CountsUnitsAndServesWaitersInFifoOrder) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Semaphore sem(2);
    co_await sem.acquire();
    co_await sem.acquire();
    EXPECT_EQ(sem.value(), 0u);
    EXPECT_TRUE(sem.locked());
    std::vector<int> order;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 4; ++i) {
      tasks.push_back(tulipa::create_task([](tulipa::Semaphore& s, std::vector<int>& o, int id) -> Coro<void> {
        co_await s.acquire();
        o.push_back(id);
      }(sem, order, i)));
    }
    co_await settle();
    EXPECT_EQ(sem.waiting(), 4u);
    sem.release();
    sem.release();
    co_await settle();
    EXPECT_EQ(order, (std::vector<int>{0, 1}));
    // A unit released while others wait goes to them, not to a newcomer.
    sem.release();
    EXPECT_TRUE(sem.locked());
    EXPECT_EQ(sem.value(), 0u);
    sem.release();
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(sem.value(), 0u);
  }());
}

TEST(Semaphore, CancellingAWaiterLosesNoUnit) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Semaphore sem(0);
    int got = 0;
    auto a = tulipa::create_task([](tulipa::Semaphore& s) -> Coro<void> { co_await s.acquire(); }(sem));
    auto b = tulipa::create_task([](tulipa::Semaphore& s, int& g) -> Coro<void> {
      co_await s.acquire();
      ++g;
    }(sem, got));
    co_await settle();
    a.cancel();  // waiting: leaves the queue
    co_await settle();
    EXPECT_TRUE(ends_cancelled(a));
    sem.release();
    co_await b;
    EXPECT_EQ(got, 1);
    EXPECT_EQ(sem.value(), 0u);
  }());
}

TEST(Semaphore, AWokenWaiterCancelledBeforeItRunsPassesItsUnitOn) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Semaphore sem(0);
    bool a_acquired = false;
    int b_acquired = 0;
    auto a = tulipa::create_task([](tulipa::Semaphore& s, bool& acq) -> Coro<void> {
      co_await s.acquire();
      acq = true;
    }(sem, a_acquired));
    auto b = tulipa::create_task([](tulipa::Semaphore& s, int& acq) -> Coro<void> {
      co_await s.acquire();
      ++acq;
    }(sem, b_acquired));
    co_await settle();
    sem.release();  // handed to `a`...
    a.cancel();     // ...cancelled before it runs: it raises, and the unit goes to `b`
    co_await b;
    EXPECT_TRUE(ends_cancelled(a));
    EXPECT_FALSE(a_acquired);
    EXPECT_EQ(b_acquired, 1);
    EXPECT_EQ(sem.value(), 0u);
    // With nobody waiting, the unit returns to the semaphore.
    auto c = tulipa::create_task([](tulipa::Semaphore& s) -> Coro<void> { co_await s.acquire(); }(sem));
    co_await settle();
    sem.release();
    c.cancel();
    co_await settle();
    EXPECT_TRUE(ends_cancelled(c));
    EXPECT_EQ(sem.value(), 1u);
  }());
}

TEST(BoundedSemaphore, RefusesReleasingBeyondItsInitialValue) {
  tulipa::run([]() -> Coro<void> {
    tulipa::BoundedSemaphore sem(1);
    EXPECT_THROW(sem.release(), std::logic_error);
    co_await sem.acquire();
    sem.release();
    EXPECT_EQ(sem.value(), 1u);
    EXPECT_THROW(sem.release(), std::logic_error);
  }());
}

// --------------------------------------------------------------------------------------------------------- Barrier

TEST(Barrier, ReleasesAllPartiesWithTheirIndicesAndIsReusable) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Barrier barrier(3);
    EXPECT_THROW(tulipa::Barrier(0), std::invalid_argument);
    for (int round = 0; round < 2; ++round) {
      std::vector<Task<std::size_t>> tasks;
      for (int i = 0; i < 3; ++i) {
        tasks.push_back(
            tulipa::create_task([](tulipa::Barrier& b) -> Coro<std::size_t> { co_return co_await b.wait(); }(barrier)));
      }
      std::vector<bool> seen(3, false);
      for (auto& t : tasks) seen.at(co_await t) = true;
      EXPECT_EQ(seen, (std::vector<bool>{true, true, true}));
      EXPECT_EQ(barrier.n_waiting(), 0u);
      EXPECT_FALSE(barrier.broken());
    }
  }());
}

TEST(Barrier, AbortBreaksWaitersAndLaterWaits) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Barrier barrier(3);
    auto a = tulipa::create_task([](tulipa::Barrier& b) -> Coro<std::size_t> { co_return co_await b.wait(); }(barrier));
    co_await settle();
    EXPECT_EQ(barrier.n_waiting(), 1u);
    co_await barrier.abort();
    EXPECT_TRUE(barrier.broken());
    bool broke = false;
    try {
      co_await a;
    } catch (const tulipa::BrokenBarrierError&) {
      broke = true;
    }
    EXPECT_TRUE(broke);
    broke = false;
    try {
      co_await barrier.wait();
    } catch (const tulipa::BrokenBarrierError&) {
      broke = true;
    }
    EXPECT_TRUE(broke);
  }());
}

TEST(Barrier, ResetBreaksCurrentWaitersThenWorksAgain) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Barrier barrier(2);
    auto a = tulipa::create_task([](tulipa::Barrier& b) -> Coro<std::size_t> { co_return co_await b.wait(); }(barrier));
    co_await settle();
    co_await barrier.reset();
    bool broke = false;
    try {
      co_await a;
    } catch (const tulipa::BrokenBarrierError&) {
      broke = true;
    }
    EXPECT_TRUE(broke);
    EXPECT_FALSE(barrier.broken());
    auto b =
        tulipa::create_task([](tulipa::Barrier& br) -> Coro<std::size_t> { co_return co_await br.wait(); }(barrier));
    std::size_t mine = co_await barrier.wait();
    std::size_t theirs = co_await b;
    EXPECT_EQ(mine + theirs, 1u);  // indices 0 and 1
  }());
}

TEST(Barrier, ACancelledWaiterLeavesAndAnotherPartyTakesItsPlace) {
  tulipa::run([]() -> Coro<void> {
    tulipa::Barrier barrier(2);
    auto quitter =
        tulipa::create_task([](tulipa::Barrier& b) -> Coro<std::size_t> { co_return co_await b.wait(); }(barrier));
    co_await settle();
    EXPECT_EQ(barrier.n_waiting(), 1u);
    quitter.cancel();
    co_await settle();
    EXPECT_TRUE(ends_cancelled(quitter));
    EXPECT_EQ(barrier.n_waiting(), 0u);
    EXPECT_FALSE(barrier.broken());
    auto other =
        tulipa::create_task([](tulipa::Barrier& b) -> Coro<std::size_t> { co_return co_await b.wait(); }(barrier));
    std::size_t mine = co_await barrier.wait();
    std::size_t theirs = co_await other;
    EXPECT_EQ(mine + theirs, 1u);
  }());
}

}  // namespace
