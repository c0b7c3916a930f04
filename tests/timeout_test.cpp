// timeout()/timeout_at() scopes and wait_for(): expiry, rescheduling, nesting, and never swallowing an outer cancel.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "support/coro_loop.hpp"
#include "tulipa/future.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"
#include "tulipa/timeout.hpp"

using namespace std::chrono_literals;
using tulipa::CancelledError;
using tulipa::Coro;
using tulipa::Future;
using tulipa::Timeout;
using tulipa::TimeoutError;
using tulipa::test::CoroLoop;

namespace {

Coro<int> slow(tulipa::Duration d, int v) {
  co_await tulipa::sleep(d);
  co_return v;
}

TEST(Timeout, ExpiresWithTimeoutError) {
  CoroLoop l;
  bool cleaned = false;
  auto body = [&]() -> Coro<std::string> {
    try {
      co_await tulipa::timeout(30s, [&]() -> Coro<void> {
        struct G {
          bool& b;
          ~G() { b = true; }
        } g{cleaned};
        co_await tulipa::sleep(1h);
      });
    } catch (const TimeoutError&) {
      co_return "timed out";
    }
    co_return "no";
  };
  auto t = l.spawn(body);
  EXPECT_EQ(l.run(Future<std::string>(t)), "timed out");
  EXPECT_EQ(l.elapsed(), 30s);
  EXPECT_TRUE(cleaned);
  EXPECT_EQ(t.cancelling(), 0);  // the scope's cancel() was withdrawn
  EXPECT_FALSE(t.cancelled());
}

TEST(Timeout, BodyFinishingInTimeReturnsItsValue) {
  CoroLoop l;
  auto body = []() -> Coro<int> { co_return co_await tulipa::timeout(10s, slow(1s, 4)); };
  EXPECT_EQ(l.run(body()), 4);
  EXPECT_EQ(l.elapsed(), 1s);
  EXPECT_EQ(l.loop().timer_count(), 0u);  // the deadline timer was cancelled
}

TEST(Timeout, NoDeadlineWaitsForever) {
  CoroLoop l;
  auto body = []() -> Coro<int> { co_return co_await tulipa::timeout(std::nullopt, slow(5h, 1)); };
  EXPECT_EQ(l.run(body()), 1);
}

TEST(Timeout, RescheduleMovesTheDeadline) {
  CoroLoop l;
  auto body = [&]() -> Coro<int> {
    co_return co_await tulipa::timeout(1s, [&](Timeout& t) -> Coro<int> {
      EXPECT_EQ(t.when(), l.loop().time() + 1s);
      co_await tulipa::sleep(500ms);
      t.reschedule(l.loop().time() + 2s);  // extend
      co_await tulipa::sleep(1500ms);      // would have expired at the old deadline
      t.reschedule(std::nullopt);          // disable
      co_await tulipa::sleep(1h);
      EXPECT_FALSE(t.expired());
      co_return 9;
    });
  };
  EXPECT_EQ(l.run(body()), 9);
}

TEST(Timeout, RescheduleIntoThePastExpiresOnTheNextPass) {
  CoroLoop l;
  auto body = [&]() -> Coro<bool> {
    try {
      co_await tulipa::timeout(1h, [&](Timeout& t) -> Coro<void> {
        t.reschedule(l.loop().time() - 1s);
        co_await tulipa::sleep(1s);
      });
    } catch (const TimeoutError&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(l.run(body()));
  EXPECT_EQ(l.elapsed(), 0s);
}

TEST(Timeout, TimeoutAtAnAbsoluteDeadline) {
  CoroLoop l;
  auto body = [&]() -> Coro<bool> {
    try {
      co_await tulipa::timeout_at(l.loop().time() + 3s, slow(1h, 0));
    } catch (const TimeoutError&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(l.run(body()));
  EXPECT_EQ(l.elapsed(), 3s);
}

TEST(Timeout, NestedScopesEachCatchTheirOwn) {
  CoroLoop l;
  auto body = [&]() -> Coro<std::string> {
    co_return co_await tulipa::timeout(10s, [&]() -> Coro<std::string> {
      try {
        co_await tulipa::timeout(1s, slow(1h, 0));
      } catch (const TimeoutError&) {
      }
      co_await tulipa::sleep(2s);  // the outer scope still has 7 s
      co_return "inner expired, outer fine";
    });
  };
  EXPECT_EQ(l.run(body()), "inner expired, outer fine");
  EXPECT_EQ(l.elapsed(), 3s);
}

TEST(Timeout, OuterDeadlineFiringInsideAnInnerScopeIsTheOutersTimeout) {
  CoroLoop l;
  auto body = [&]() -> Coro<std::string> {
    try {
      co_await tulipa::timeout(1s, [&]() -> Coro<void> {
        try {
          co_await tulipa::timeout(1h, slow(2h, 0));
        } catch (const TimeoutError&) {
          ADD_FAILURE() << "the inner scope must not claim the outer deadline";
        }
      });
    } catch (const TimeoutError&) {
      co_return "outer";
    }
    co_return "none";
  };
  EXPECT_EQ(l.run(body()), "outer");
}

// The bug asyncio had before 3.11's cancelling() counts: an outside cancel arriving together with the deadline was
// turned into TimeoutError and lost.
TEST(Timeout, NeverSwallowsAnOuterCancellationArrivingWithTheDeadline) {
  for (bool outside_first : {false, true}) {
    CoroLoop l;
    auto body = [&]() -> Coro<void> { co_await tulipa::timeout(1s, slow(1h, 0)); };
    auto t = l.spawn(body);
    l.loop().run_once();
    auto deadline = l.loop().time() + 1s;
    // Just before the deadline (delivered as the deadline fires), or at it (timers of equal deadline run in order,
    // so right after the scope's own timer, before the task runs again).
    l.loop().call_at(outside_first ? deadline - 1ns : deadline, [&] { t.cancel("outside"); });
    EXPECT_THROW(l.run(Future<void>(t)), CancelledError) << outside_first;
    EXPECT_TRUE(t.cancelled());
  }
}

TEST(Timeout, CancellingTheTaskInsideAScopePropagates) {
  CoroLoop l;
  auto body = [&]() -> Coro<void> { co_await tulipa::timeout(1h, slow(2h, 0)); };
  auto t = l.spawn(body);
  l.loop().run_once();
  t.cancel();
  EXPECT_THROW(l.run(Future<void>(t)), CancelledError);
  EXPECT_EQ(l.loop().timer_count(), 0u);
}

TEST(Timeout, BodyThatSwallowsTheCancellationEndsNormally) {
  CoroLoop l;
  auto body = [&]() -> Coro<int> {
    int r = co_await tulipa::timeout(1s, [&]() -> Coro<int> {
      try {
        co_await tulipa::sleep(1h);
      } catch (const CancelledError&) {
      }
      co_return 1;
    });
    co_await tulipa::sleep(1s);  // nothing left pending
    co_return r;
  };
  EXPECT_EQ(l.run(body()), 1);
}

TEST(Timeout, OutsideATaskIsAnError) {
  CoroLoop l;
  EXPECT_THROW(Timeout{std::nullopt}, std::logic_error);  // braces: `Timeout(std::nullopt);` declares a variable
}

TEST(WaitFor, CoroutineInTime) {
  CoroLoop l;
  auto body = []() -> Coro<int> { co_return co_await tulipa::wait_for(slow(1s, 3), 2s); };
  EXPECT_EQ(l.run(body()), 3);
}

TEST(WaitFor, CoroutineTooSlow) {
  CoroLoop l;
  auto body = []() -> Coro<int> { co_return co_await tulipa::wait_for(slow(1h, 3), 2s); };
  EXPECT_THROW(l.run(body()), TimeoutError);
  EXPECT_EQ(l.elapsed(), 2s);
}

TEST(WaitFor, TaskIsCancelledAtTheDeadline) {
  CoroLoop l;
  auto inner = tulipa::create_task(l.loop(), slow(1h, 3));
  auto body = [&]() -> Coro<int> { co_return co_await tulipa::wait_for(inner, 2s); };
  EXPECT_THROW(l.run(l.spawn(body)), TimeoutError);
  EXPECT_TRUE(inner.cancelled());
}

TEST(WaitFor, ZeroDelay) {
  CoroLoop l;
  bool ran = false;
  auto never = [&]() -> Coro<int> {
    ran = true;
    co_return 1;
  };
  auto body = [&]() -> Coro<void> { co_await tulipa::wait_for(never(), 0s); };
  EXPECT_THROW(l.run(l.spawn(body)), TimeoutError);
  EXPECT_FALSE(ran);

  Future<int> done(l.loop());
  done.set_result(6);
  auto body2 = [&]() -> Coro<int> { co_return co_await tulipa::wait_for(done, 0s); };
  EXPECT_EQ(l.run(l.spawn(body2)), 6);

  auto pending = tulipa::create_task(l.loop(), slow(1h, 0));
  auto body3 = [&]() -> Coro<int> { co_return co_await tulipa::wait_for(pending, 0s); };
  EXPECT_THROW(l.run(l.spawn(body3)), TimeoutError);
  EXPECT_TRUE(pending.cancelled());
}

TEST(WaitFor, ZeroDelayOnATaskThatRefusesGivesItsResult) {
  CoroLoop l;
  auto refuses = []() -> Coro<int> {
    try {
      co_await tulipa::sleep(1h);
    } catch (const CancelledError&) {
      tulipa::current_task().uncancel();
    }
    co_await tulipa::sleep(1s);  // some cleanup
    co_return 11;
  };
  auto inner = tulipa::create_task(l.loop(), refuses());
  auto body = [&]() -> Coro<int> {
    co_await tulipa::sleep(0ms);  // let inner start
    co_return co_await tulipa::wait_for(inner, 0s);
  };
  EXPECT_EQ(l.run(l.spawn(body)), 11);
}

TEST(WaitFor, ZeroDelayCancelledFromOutsideWhileTheTaskCleansUp) {
  CoroLoop l;
  auto slow_cleanup = []() -> Coro<int> {
    try {
      co_await tulipa::sleep(1h);
    } catch (const CancelledError&) {
    }
    co_await tulipa::sleep(10s);
    throw CancelledError();
  };
  auto inner = tulipa::create_task(l.loop(), slow_cleanup());
  auto body = [&]() -> Coro<int> {
    co_await tulipa::sleep(0ms);
    co_return co_await tulipa::wait_for(inner, 0s);
  };
  auto t = l.spawn(body);
  l.loop().call_later(1s, [&] { t.cancel(); });
  EXPECT_THROW(l.run(Future<int>(t)), CancelledError);  // not TimeoutError: the outside cancel wins
  EXPECT_FALSE(inner.done());                           // still cleaning up, not cancelled twice
  l.drain();
  EXPECT_TRUE(inner.cancelled());
}

TEST(WaitFor, CancelledFromOutsideWhileWaiting) {
  CoroLoop l;
  auto inner = tulipa::create_task(l.loop(), slow(1h, 3));
  auto body = [&]() -> Coro<int> { co_return co_await tulipa::wait_for(inner, 1h); };
  auto t = l.spawn(body);
  l.loop().run_once();
  l.loop().run_once();
  t.cancel();
  EXPECT_THROW(l.run(Future<int>(t)), CancelledError);
  EXPECT_TRUE(inner.cancelled());
  EXPECT_TRUE(t.cancelled());
}

}  // namespace
