// gather, wait, as_completed, shield: results, errors, and each one cancelled while suspended.
#include <gtest/gtest.h>

#include <initializer_list>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "support/coro_loop.hpp"
#include "tulipa/combinators.hpp"
#include "tulipa/future.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"
#include "tulipa/timeout.hpp"

using namespace std::chrono_literals;
using tulipa::CancelledError;
using tulipa::Coro;
using tulipa::Future;
using tulipa::ReturnWhen;
using tulipa::Task;
using tulipa::TimeoutError;
using tulipa::test::CoroLoop;

namespace {

Coro<int> slow(tulipa::Duration d, int v) {
  co_await tulipa::sleep(d);
  co_return v;
}
Coro<void> pause(tulipa::Duration d) { co_await tulipa::sleep(d); }
Coro<int> fail_after(tulipa::Duration d, std::string what) {
  co_await tulipa::sleep(d);
  throw std::runtime_error(what);
}

// spawn_all(l, secs, value, secs, value...): one task a pair. (g++ 12 cannot copy a braced list into a coroutine
// frame, hence no initializer_list.)
template <class... Ints>
std::vector<Task<int>> spawn_all(CoroLoop& l, Ints... spec) {
  int flat[] = {spec...};
  std::vector<Task<int>> v;
  for (std::size_t i = 0; i + 1 < sizeof...(spec); i += 2)
    v.push_back(tulipa::create_task(l.loop(), slow(std::chrono::seconds(flat[i]), flat[i + 1])));
  return v;
}

TEST(Gather, ResultsInInputOrder) {
  CoroLoop l;
  auto body = [&]() -> Coro<std::vector<int>> { co_return co_await tulipa::gather(spawn_all(l, 3, 1, 1, 2, 2, 3)); };
  EXPECT_EQ(l.run(body()), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(l.elapsed(), 3s);
}

TEST(Gather, OfCoroutinesAndOfMixedTypes) {
  CoroLoop l;
  auto body = [&]() -> Coro<int> {
    std::vector<Coro<int>> cs;
    for (int i = 0; i < 5; ++i) cs.push_back(slow(1s, i));
    auto v = co_await tulipa::gather(std::move(cs));
    auto [a, b, c] = co_await tulipa::gather(slow(1s, 10), pause(2s), tulipa::create_task(slow(1s, 20)));
    static_assert(std::is_same_v<decltype(b), std::monostate>);
    co_return v[4] + a + c;
  };
  EXPECT_EQ(l.run(body()), 34);
}

// gather, shield and wait_for take a capturing lambda and keep it alive while its coroutine runs (the closure
// would die at the end of the statement otherwise: ASan checks the heap strings below). The lambdas are named
// before the co_await: g++ 12 copies a closure temporary inside a co_await expression bitwise and destroys both
// copies (docs/coroutines.md, "g++ 12").
TEST(Gather, ShieldAndWaitForKeepACapturingCallableAlive) {
  CoroLoop l;
  auto body = [&]() -> Coro<std::string> {
    std::string a = "a string long enough to be on the heap, a";
    std::string b = "a string long enough to be on the heap, b";
    auto first = [a]() -> Coro<std::string> {
      co_await tulipa::sleep(1s);
      co_return a;
    };
    auto second = [b]() -> Coro<std::size_t> {
      co_await tulipa::sleep(2s);
      co_return b.size();
    };
    auto shielded = [a]() -> Coro<std::string> {
      co_await tulipa::sleep(1s);
      co_return a + "!";
    };
    auto bounded = [b]() -> Coro<std::string> {
      co_await tulipa::sleep(1s);
      co_return b;
    };
    auto [x, y] = co_await tulipa::gather(std::move(first), std::move(second));
    std::string z = co_await tulipa::shield(std::move(shielded));
    std::string w = co_await tulipa::wait_for(std::move(bounded), 5s);
    co_return x + "|" + std::to_string(y) + "|" + z + "|" + w;
  };
  EXPECT_EQ(l.run(body()),
            "a string long enough to be on the heap, a|41|a string long enough to be on the heap, a!|"
            "a string long enough to be on the heap, b");
  EXPECT_EQ(l.elapsed(), 4s);
}

TEST(Gather, VoidTasks) {
  CoroLoop l;
  auto body = [&]() -> Coro<void> {
    std::vector<Task<void>> v;
    for (int i = 0; i < 3; ++i) v.push_back(tulipa::create_task(pause(std::chrono::seconds(i))));
    co_await tulipa::gather(std::move(v));
  };
  l.run(body());
  EXPECT_EQ(l.elapsed(), 2s);
}

TEST(Gather, FirstErrorIsRaisedAtOnceOthersKeepRunning) {
  CoroLoop l;
  Task<int> survivor = tulipa::create_task(l.loop(), slow(10s, 5));
  auto body = [&]() -> Coro<std::string> {
    std::vector<Task<int>> v{tulipa::create_task(fail_after(1s, "first")), survivor,
                             tulipa::create_task(fail_after(2s, "second"))};
    auto keep = v[2];
    std::string what;
    try {
      co_await tulipa::gather(std::move(v));
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    EXPECT_FALSE(survivor.done());
    bool second_failed = false;
    try {
      co_await keep;  // retrieves the second error
    } catch (const std::runtime_error&) {
      second_failed = true;
    }
    EXPECT_TRUE(second_failed);
    co_return what;
  };
  EXPECT_EQ(l.run(body()), "first");
  EXPECT_EQ(l.run(Future<int>(survivor)), 5);
  EXPECT_TRUE(l.reported.empty());
}

TEST(Gather, ReturnExceptions) {
  CoroLoop l;
  auto body = [&]() -> Coro<void> {
    auto cancelled = tulipa::create_task(slow(1h, 0));
    cancelled.cancel();
    std::vector<Task<int>> v{tulipa::create_task(slow(1s, 1)), tulipa::create_task(fail_after(2s, "bad")), cancelled};
    auto out = co_await tulipa::gather(std::move(v), tulipa::return_exceptions);
    EXPECT_EQ(out.size(), 3u);
    EXPECT_TRUE(out[0].ok());
    EXPECT_EQ(*out[0].value, 1);
    EXPECT_EQ(tulipa::describe_exception(out[1].error), "bad");
    EXPECT_TRUE(tulipa::is_cancelled_error(out[2].error));
  };
  l.run(body());
  EXPECT_EQ(l.elapsed(), 2s);
  EXPECT_TRUE(l.reported.empty());
}

TEST(Gather, CancelledWhileSuspendedCancelsEveryChildAndWaitsForThem) {
  CoroLoop l;
  int cleanups_done = 0;
  auto child = [&]() -> Coro<int> {
    try {
      co_await tulipa::sleep(1h);
    } catch (const CancelledError&) {
    }
    co_await tulipa::sleep(1s);  // cleanup takes a while (the cancellation was consumed above)
    ++cleanups_done;
    throw CancelledError();
  };
  std::vector<Task<int>> kids;
  auto body = [&]() -> Coro<void> {
    for (int i = 0; i < 3; ++i) kids.push_back(tulipa::create_task(child()));
    co_await tulipa::gather(kids);
  };
  auto t = l.spawn(body);
  l.loop().run_once();
  l.loop().run_once();
  t.cancel();
  EXPECT_THROW(l.run(Future<void>(t)), CancelledError);
  EXPECT_EQ(cleanups_done, 3);  // gather returned only after every child finished
  for (auto& k : kids) EXPECT_TRUE(k.cancelled());
}

TEST(Wait, FirstCompletedFirstExceptionAllCompleted) {
  CoroLoop l;
  auto body = [&]() -> Coro<void> {
    auto r = co_await tulipa::wait(spawn_all(l, 3, 1, 1, 2, 2, 3), ReturnWhen::FIRST_COMPLETED);
    EXPECT_EQ(r.done.size(), 1u);
    EXPECT_EQ(r.done[0].result(), 2);
    EXPECT_EQ(r.pending.size(), 2u);
    auto r2 = co_await tulipa::wait(std::move(r.pending));
    EXPECT_EQ(r2.done.size(), 2u);
    EXPECT_TRUE(r2.pending.empty());

    std::vector<Task<int>> v{tulipa::create_task(slow(5s, 0)), tulipa::create_task(fail_after(1s, "x"))};
    auto r3 = co_await tulipa::wait(std::move(v), ReturnWhen::FIRST_EXCEPTION);
    EXPECT_EQ(r3.done.size(), 1u);
    EXPECT_TRUE(r3.done[0].exception() != nullptr);
    co_await tulipa::wait(std::move(r3.pending));
  };
  l.run(body());
}

TEST(Wait, TimeoutReturnsTheSplitWithoutRaising) {
  CoroLoop l;
  auto body = [&]() -> Coro<void> {
    auto r = co_await tulipa::wait(spawn_all(l, 1, 1, 10, 2), ReturnWhen::ALL_COMPLETED, 5s);
    EXPECT_EQ(r.done.size(), 1u);
    EXPECT_EQ(r.pending.size(), 1u);
    co_await tulipa::wait(std::move(r.pending));
  };
  l.run(body());
  EXPECT_EQ(l.elapsed(), 10s);
}

TEST(Wait, EmptySetIsAnError) {
  EXPECT_THROW(static_cast<void>(tulipa::wait(std::vector<Task<int>>{})), std::invalid_argument);
}

TEST(Wait, CancelledWhileSuspendedLeavesTheTasksAlone) {
  CoroLoop l;
  std::vector<Task<int>> kids;
  auto body = [&]() -> Coro<void> {
    kids = spawn_all(l, 10, 1, 20, 2);
    co_await tulipa::wait(kids, ReturnWhen::ALL_COMPLETED, 1h);
  };
  auto t = l.spawn(body);
  l.loop().run_once();
  t.cancel();
  EXPECT_THROW(l.run(Future<void>(t)), CancelledError);
  for (auto& k : kids) EXPECT_FALSE(k.done());
  l.drain();
  EXPECT_EQ(kids[1].result(), 2);
}

TEST(AsCompleted, YieldsTasksInCompletionOrder) {
  CoroLoop l;
  auto body = [&]() -> Coro<std::vector<int>> {
    std::vector<int> order;
    auto ac = tulipa::as_completed(spawn_all(l, 3, 1, 1, 2, 2, 3));
    while (ac.remaining()) {
      Task<int> t = co_await ac.next();
      order.push_back(co_await t);
    }
    co_return order;
  };
  EXPECT_EQ(l.run(body()), (std::vector<int>{2, 3, 1}));
}

TEST(AsCompleted, Timeout) {
  CoroLoop l;
  auto body = [&]() -> Coro<int> {
    auto ac = tulipa::as_completed(spawn_all(l, 1, 1, 10, 2), 5s);
    int got = 0;
    try {
      while (ac.remaining()) got += (co_await ac.next()).result();
    } catch (const TimeoutError&) {
      got += 100;
    }
    co_return got;
  };
  EXPECT_EQ(l.run(body()), 101);
  EXPECT_EQ(l.elapsed(), 5s);
}

TEST(AsCompleted, CancelledWhileSuspended) {
  CoroLoop l;
  std::vector<Task<int>> kids;
  auto body = [&]() -> Coro<void> {
    kids = spawn_all(l, 10, 1);
    auto ac = tulipa::as_completed(kids);
    (void)co_await ac.next();
  };
  auto t = l.spawn(body);
  l.loop().run_once();
  t.cancel();
  EXPECT_THROW(l.run(Future<void>(t)), CancelledError);
  EXPECT_FALSE(kids[0].done());
  l.drain();
}

TEST(Shield, CancellingTheAwaiterLeavesTheTaskRunning) {
  CoroLoop l;
  Task<int> inner = tulipa::create_task(l.loop(), slow(10s, 8));
  auto body = [&]() -> Coro<int> { co_return co_await tulipa::shield(inner); };
  auto t = l.spawn(body);
  l.loop().run_once();
  t.cancel();
  EXPECT_THROW(l.run(Future<int>(t)), CancelledError);
  EXPECT_FALSE(inner.done());
  EXPECT_EQ(l.run(Future<int>(inner)), 8);
}

TEST(Shield, ReturnsTheResultWhenNotCancelled) {
  CoroLoop l;
  auto body = [&]() -> Coro<int> { co_return co_await tulipa::shield(slow(1s, 4)); };
  EXPECT_EQ(l.run(body()), 4);
}

TEST(Shield, AShieldedCoroutineSurvivesItsAwaiterAndErrorsAreNotLost) {
  CoroLoop l;
  auto body = [&]() -> Coro<int> { co_return co_await tulipa::shield(fail_after(5s, "later")); };
  auto t = l.spawn(body);
  l.loop().run_once();
  t.cancel();
  EXPECT_THROW(l.run(Future<int>(t)), CancelledError);
  l.drain();  // the shielded task (nobody holds it) runs to its end, kept alive by the loop
  ASSERT_EQ(l.reported.size(), 1u);
  EXPECT_EQ(l.reported[0].message, "Task exception was never retrieved");
}

}  // namespace
