// Future<T>: completion, errors, done callbacks through the loop, awaiting, unretrieved exceptions.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/coro_loop.hpp"
#include "tulipa/future.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace std::chrono_literals;
using tulipa::CancelledError;
using tulipa::Coro;
using tulipa::Future;
using tulipa::InvalidStateError;
using tulipa::test::CoroLoop;

namespace {

TEST(Future, ResultAndStates) {
  CoroLoop l;
  Future<int> f(l.loop());
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_THROW(f.result(), InvalidStateError);
  EXPECT_THROW(f.exception(), InvalidStateError);
  f.set_result(7);
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(), 7);
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_THROW(f.set_result(8), InvalidStateError);
  EXPECT_FALSE(f.try_set_result(8));
  EXPECT_FALSE(f.cancel());
  Future<int> copy = f;  // same future
  EXPECT_TRUE(copy == f);
  EXPECT_EQ(copy.result(), 7);
}

TEST(Future, ExceptionIsRethrownByResult) {
  CoroLoop l;
  Future<void> f(l.loop());
  f.set_exception(std::runtime_error("bad"));
  EXPECT_THROW(f.result(), std::runtime_error);
  EXPECT_EQ(tulipa::describe_exception(f.exception()), "bad");
  EXPECT_THROW(f.set_exception(std::runtime_error("again")), InvalidStateError);
  EXPECT_THROW(f.set_exception(std::exception_ptr()), InvalidStateError);
  Future<void> g(l.loop());
  EXPECT_THROW(g.set_exception(std::exception_ptr()), std::invalid_argument);
  EXPECT_TRUE(g.try_set_exception(std::make_exception_ptr(std::logic_error("x"))));
  EXPECT_THROW(g.result(), std::logic_error);
}

TEST(Future, CancelWithMessage) {
  CoroLoop l;
  Future<int> f(l.loop());
  EXPECT_TRUE(f.cancel("stop it"));
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancel());
  try {
    f.result();
    FAIL();
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "stop it");
  }
  EXPECT_THROW(f.exception(), CancelledError);
  EXPECT_FALSE(f.try_set_result(1));
}

TEST(Future, DoneCallbacksRunThroughTheLoop) {
  CoroLoop l;
  Future<int> f(l.loop());
  std::vector<std::string> log;
  f.add_done_callback([&](Future<int>& g) { log.push_back("a" + std::to_string(g.result())); });
  auto id = f.add_done_callback([&] { log.push_back("removed"); });
  f.add_done_callback([&] { log.push_back("c"); });
  EXPECT_EQ(f.remove_done_callback(id), 1u);
  EXPECT_EQ(f.remove_done_callback(id), 0u);
  f.set_result(1);
  EXPECT_TRUE(log.empty());  // never inside set_result
  l.loop().run_once();
  EXPECT_EQ(log, (std::vector<std::string>{"a1", "c"}));
  // Added once done: scheduled at once, still through the loop.
  f.add_done_callback([&] { log.push_back("late"); });
  EXPECT_EQ(log.size(), 2u);
  l.loop().run_once();
  EXPECT_EQ(log.back(), "late");
}

TEST(Future, CallbacksOfAFutureNeverDoneAreFreed) {
  CoroLoop l;
  auto token = std::make_shared<int>(1);
  {
    Future<int> f(l.loop());
    f.add_done_callback([token] {});
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_EQ(token.use_count(), 1);
}

TEST(Future, AwaitResumesOnALaterPass) {
  CoroLoop l;
  Future<int> f(l.loop());
  std::vector<std::string> log;
  auto waiter = [&]() -> Coro<int> {
    log.push_back("waiting");
    int v = co_await f;
    log.push_back("got " + std::to_string(v));
    co_return v;
  };
  auto t = tulipa::create_task(l.loop(), waiter());
  l.loop().run_once();
  EXPECT_EQ(log, (std::vector<std::string>{"waiting"}));
  f.set_result(42);
  EXPECT_EQ(log.size(), 1u);  // the wake-up is a call_soon
  EXPECT_EQ(l.run(Future<int>(t)), 42);
  EXPECT_EQ(log.back(), "got 42");
}

TEST(Future, AwaitOfADoneFutureDoesNotSuspend) {
  CoroLoop l;
  Future<int> f(l.loop());
  f.set_result(5);
  int passes_seen = -1;
  auto body = [&]() -> Coro<void> {
    auto before = l.loop().ready_count();
    for (int i = 0; i < 100; ++i) (void)co_await f;
    passes_seen = int(l.loop().ready_count() - before);
  };
  auto t = tulipa::create_task(l.loop(), body());
  l.loop().run_once();  // one step runs all 100 awaits
  EXPECT_TRUE(t.done());
  EXPECT_EQ(passes_seen, 0);
}

TEST(Future, MoveOnlyResultsAreMovedOut) {
  CoroLoop l;
  Future<std::unique_ptr<int>> f(l.loop());
  auto body = [&]() -> Coro<int> {
    std::unique_ptr<int> p = co_await std::move(f);
    co_return *p;
  };
  auto t = tulipa::create_task(l.loop(), body());
  l.loop().run_once();
  f.set_result(std::make_unique<int>(9));
  EXPECT_EQ(l.run(Future<int>(t)), 9);
}

TEST(Future, MovingAwaitCopiesWhenTheResultIsShared) {
  CoroLoop l;
  auto make = []() -> Coro<std::string> { co_return std::string(100, 'x'); };
  auto t = tulipa::create_task(l.loop(), make());
  auto body = [&]() -> Coro<std::size_t> {
    tulipa::Task<std::string> copy = t;
    std::string s = co_await std::move(copy);  // `t` still refers to the task: copied, not emptied
    co_return s.size();
  };
  EXPECT_EQ(l.run(body()), 100u);
  EXPECT_EQ(t.result().size(), 100u);
  EXPECT_EQ(l.run(Future<std::string>(t)).size(), 100u);  // run_until_complete shares too
  EXPECT_EQ(t.result().size(), 100u);
}

TEST(Future, AwaitingAFailedFutureThrows) {
  CoroLoop l;
  Future<void> f(l.loop());
  auto body = [&]() -> Coro<std::string> {
    try {
      co_await f;
    } catch (const std::exception& e) {
      co_return e.what();
    }
    co_return "";
  };
  auto t = tulipa::create_task(l.loop(), body());
  l.loop().run_once();
  f.set_exception(std::runtime_error("late failure"));
  EXPECT_EQ(l.run(Future<std::string>(t)), "late failure");
  EXPECT_TRUE(l.reported.empty());  // awaiting retrieved it
}

TEST(Future, UnretrievedExceptionIsReported) {
  CoroLoop l;
  {
    Future<int> f(l.loop());
    f.set_exception(std::runtime_error("nobody looked"));
  }
  ASSERT_EQ(l.reported.size(), 1u);
  EXPECT_EQ(l.reported[0].message, "Future exception was never retrieved");
  EXPECT_EQ(tulipa::describe_exception(l.reported[0].exception), "nobody looked");
}

TEST(Future, ATaskCannotBeCompletedFromOutside) {
  CoroLoop l;
  auto t = tulipa::create_task(l.loop(), []() -> Coro<int> { co_return 1; }());
  // Task hides them (task_test.cpp checks that at compile time); through a Future handle on it they refuse.
  Future<int> as_future = t;
  EXPECT_THROW(as_future.set_result(2), InvalidStateError);
  EXPECT_FALSE(as_future.try_set_result(2));
  EXPECT_EQ(l.run(Future<int>(t)), 1);
}

TEST(Future, DefaultConstructionNeedsARunningLoop) {
  EXPECT_THROW(Future<int>(), std::runtime_error);
  CoroLoop l;
  auto body = []() -> Coro<bool> {
    Future<int> f;  // on the running loop
    f.set_result(1);
    co_return f.done();
  };
  EXPECT_TRUE(l.run(body()));
}

}  // namespace
