// Cancellation: delivered at the current suspension point, cleanup runs, explicit refusal, cancelling()/uncancel(),
// forwarding to awaited futures and tasks, the result-wins rule, and each basic awaitable cancelled while suspended.
#include <gtest/gtest.h>

#include <coroutine>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/coro_loop.hpp"
#include "tulipa/future.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace std::chrono_literals;
using tulipa::AnyTask;
using tulipa::CancelledError;
using tulipa::Coro;
using tulipa::Future;
using tulipa::Task;
using tulipa::test::CoroLoop;

namespace {

struct Flag {
  bool& b;
  ~Flag() { b = true; }
};

TEST(Cancel, DeliveredAtTheSleepWithMessageAndCleanup) {
  CoroLoop l;
  bool raii = false, caught = false;
  std::string msg;
  auto body = [&]() -> Coro<void> {
    Flag f{raii};
    try {
      co_await tulipa::sleep(1h);
    } catch (const CancelledError& e) {
      caught = true;
      msg = e.message();
      throw;
    }
  };
  auto t = tulipa::create_task(l.loop(), body());
  l.loop().run_once();
  EXPECT_TRUE(t.cancel("shutting down"));
  EXPECT_EQ(t.cancelling(), 1);
  EXPECT_THROW(l.run(Future<void>(t)), CancelledError);
  EXPECT_TRUE(t.cancelled());
  EXPECT_TRUE(caught);
  EXPECT_TRUE(raii);
  EXPECT_EQ(msg, "shutting down");
  EXPECT_EQ(l.loop().timer_count(), 0u);  // the sleep's timer is gone
  EXPECT_LT(l.elapsed(), 1h);
  EXPECT_FALSE(t.cancel());  // done
  EXPECT_TRUE(l.reported.empty());
}

TEST(Cancel, IsNotCaughtAsStdException) {
  CoroLoop l;
  bool swallowed = false;
  auto body = [&]() -> Coro<void> {
    try {
      co_await tulipa::sleep(1h);
    } catch (const std::exception&) {
      swallowed = true;  // asyncio's old trap: must not happen
    }
  };
  auto t = tulipa::create_task(l.loop(), body());
  l.loop().run_once();
  t.cancel();
  l.drain();
  EXPECT_FALSE(swallowed);
  EXPECT_TRUE(t.cancelled());
}

TEST(Cancel, BeforeTheFirstStepTheCoroutineNeverRuns) {
  CoroLoop l;
  bool ran = false;
  auto body = [&]() -> Coro<int> {
    ran = true;
    co_return 1;
  };
  auto t = tulipa::create_task(l.loop(), body());
  t.cancel("early");
  l.drain();
  EXPECT_FALSE(ran);
  EXPECT_TRUE(t.cancelled());
  try {
    t.result();
    FAIL();
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "early");
  }
}

TEST(Cancel, ATaskRefusesOnlyExplicitly) {
  CoroLoop l;
  auto body = []() -> Coro<int> {
    try {
      co_await tulipa::sleep(1h);
    } catch (const CancelledError&) {
      tulipa::current_task().uncancel();  // refuse, as asyncio asks
    }
    co_await tulipa::sleep(1s);  // no cancellation pending any more
    co_return 7;
  };
  auto t = tulipa::create_task(l.loop(), body());
  l.loop().run_once();
  t.cancel();
  EXPECT_EQ(l.run(Future<int>(t)), 7);
  EXPECT_EQ(t.cancelling(), 0);
  EXPECT_FALSE(t.cancelled());
}

TEST(Cancel, CancellingCountsAndUncancelWithdrawsAnUndeliveredOne) {
  CoroLoop l;
  auto body = []() -> Coro<int> {
    AnyTask me = tulipa::current_task();
    me.cancel();  // while running: pending until the next suspension point
    me.cancel();
    EXPECT_EQ(me.cancelling(), 2);
    EXPECT_EQ(me.uncancel(), 1);
    EXPECT_EQ(me.uncancel(), 0);  // nothing left: the pending delivery is withdrawn
    co_await tulipa::sleep(1s);
    co_return 3;
  };
  EXPECT_EQ(l.run(body()), 3);
}

TEST(Cancel, SelfCancelDeliveredAtTheNextAwait) {
  CoroLoop l;
  std::vector<std::string> log;
  auto body = [&]() -> Coro<void> {
    tulipa::current_task().cancel();
    log.push_back("still running");
    co_await tulipa::sleep(1s);
    log.push_back("not reached");
  };
  auto t = tulipa::create_task(l.loop(), body());
  l.drain();
  EXPECT_TRUE(t.cancelled());
  EXPECT_EQ(log, (std::vector<std::string>{"still running"}));
}

TEST(Cancel, CancelRightBeforeReturningMarksTheTaskCancelled) {
  CoroLoop l;
  auto t = tulipa::create_task(l.loop(), []() -> Coro<int> {
    tulipa::current_task().cancel();
    co_return 1;
  }());
  l.drain();
  EXPECT_TRUE(t.cancelled());  // as asyncio's __step does
}

TEST(Cancel, AwaitedFutureIsCancelledWithTheTask) {
  CoroLoop l;
  Future<int> f(l.loop());
  auto t = l.spawn([&]() -> Coro<int> { co_return co_await f; });
  l.loop().run_once();
  t.cancel("bye");
  EXPECT_TRUE(f.cancelled());  // asyncio: Task.cancel cancels the future it waits on
  EXPECT_THROW(l.run(Future<int>(t)), CancelledError);
  EXPECT_TRUE(t.cancelled());
}

TEST(Cancel, AwaitedTaskIsCancelledWithTheTask) {
  CoroLoop l;
  bool inner_cleaned = false;
  auto inner = l.spawn([&]() -> Coro<int> {
    Flag f{inner_cleaned};
    co_await tulipa::sleep(1h);
    co_return 1;
  });
  auto outer = l.spawn([&]() -> Coro<int> { co_return co_await inner; });
  l.loop().run_once();
  outer.cancel();
  l.drain();
  EXPECT_TRUE(inner.cancelled());
  EXPECT_TRUE(inner_cleaned);
  EXPECT_TRUE(outer.cancelled());
}

TEST(Cancel, InnerTaskThatRefusesGivesItsResultToTheOuter) {
  CoroLoop l;
  auto inner = tulipa::create_task(l.loop(), []() -> Coro<int> {
    try {
      co_await tulipa::sleep(1h);
    } catch (const CancelledError&) {
      tulipa::current_task().uncancel();
    }
    co_return 5;
  }());
  auto outer = l.spawn([&]() -> Coro<int> { co_return co_await inner; });
  l.loop().run_once();
  outer.cancel();
  EXPECT_EQ(l.run(Future<int>(outer)), 5);  // asyncio semantics: the cancellation went to the inner task
}

TEST(Cancel, ResultWinsOverACancelArrivingAfterTheWakeUp) {
  CoroLoop l;
  Future<int> f(l.loop());
  std::vector<std::string> log;
  auto t = l.spawn([&]() -> Coro<void> {
    int v = co_await f;
    log.push_back("got " + std::to_string(v));  // the value is not lost
    co_await tulipa::sleep(1s);                 // the cancellation lands here
    log.push_back("not reached");
  });
  l.loop().run_once();
  f.set_result(1);  // wakes the task (scheduled)...
  t.cancel();       // ...and the cancel arrives before it runs
  EXPECT_FALSE(f.cancelled());
  l.drain();
  EXPECT_EQ(log, (std::vector<std::string>{"got 1"}));
  EXPECT_TRUE(t.cancelled());
}

// An awaiter that opts in to asyncio's rule with raise_pending_cancel().
class Notify final : public tulipa::Suspension {
 public:
  explicit Notify(Notify** slot) noexcept : slot_(slot) {}
  Notify(Notify&&) = default;
  ~Notify() {
    if (*slot_ == this) *slot_ = nullptr;
  }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (!park(h)) return false;
    *slot_ = this;
    return true;
  }
  void await_resume() const {
    check_cancelled();
    raise_pending_cancel();
  }
  void fire() {
    *slot_ = nullptr;
    wake();
  }
  void describe(std::ostream& os) const override { os << "Notify"; }

 private:
  Cancel on_cancel() noexcept override {
    *slot_ = nullptr;
    return Cancel::detached;
  }
  Notify** slot_;
};

TEST(Cancel, AnAwaiterCanOptInToRaisingAfterItsWakeUp) {
  CoroLoop l;
  Notify* waiting = nullptr;
  bool resumed_normally = false;
  auto t = l.spawn([&]() -> Coro<void> {
    co_await Notify(&waiting);
    resumed_normally = true;
  });
  l.loop().run_once();
  ASSERT_NE(waiting, nullptr);
  waiting->fire();
  t.cancel("late");
  EXPECT_THROW(l.run(Future<void>(t)), CancelledError);
  EXPECT_FALSE(resumed_normally);
  EXPECT_TRUE(t.cancelled());
}

TEST(Cancel, RepeatedCancelIsDeliveredOnce) {
  CoroLoop l;
  int caught = 0;
  auto t = l.spawn([&]() -> Coro<int> {
    try {
      co_await tulipa::sleep(1h);
    } catch (const CancelledError&) {
      ++caught;
    }
    co_return caught;
  });
  l.loop().run_once();
  t.cancel();
  t.cancel();
  EXPECT_EQ(l.run(Future<int>(t)), 1);
  EXPECT_EQ(t.cancelling(), 2);
}

TEST(Cancel, SleepZeroIsCancellable) {
  CoroLoop l;
  auto t = tulipa::create_task(l.loop(), []() -> Coro<void> {
    for (;;) co_await tulipa::sleep(0ms);
  }());
  for (int i = 0; i < 5; ++i) l.loop().run_once();
  t.cancel();
  l.drain();
  EXPECT_TRUE(t.cancelled());
}

TEST(Cancel, AwaitingOutsideATaskIsAnError) {
  // A coroutine resumed by hand (no task) cannot park: the error comes back as an exception at the co_await.
  CoroLoop l;
  auto c = []() -> Coro<std::string> {
    try {
      co_await tulipa::sleep(1s);
    } catch (const std::logic_error& e) {
      co_return e.what();
    }
    co_return "";
  }();
  auto h = c.release();
  h.resume();
  ASSERT_TRUE(h.done());
  EXPECT_NE(h.promise().take().find("outside a task"), std::string::npos);
  h.destroy();
}

}  // namespace
