// Tasks: creation, stepping through the loop, results, names, current_task/all_tasks, lifetime, error reporting,
// await chains, and the frame allocator's steady state.
#include <gtest/gtest.h>

#include <atomic>
#include <coroutine>
#include <cstdlib>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/coro_loop.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/future.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace std::chrono_literals;
using tulipa::AnyTask;
using tulipa::Coro;
using tulipa::Future;
using tulipa::Task;
using tulipa::test::CoroLoop;

namespace {

// Counts every global allocation, to prove steady-state task spawning allocates nothing.
std::atomic<long> g_allocs{0};

}  // namespace

void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// noinline: inlined, g++ 12 sees free() on what operator new returned and warns (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

Coro<int> add(int a, int b) { co_return a + b; }

Coro<int> nested(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await nested(depth - 1);
}

Coro<int> sleepy(int v, tulipa::Duration d) {
  co_await tulipa::sleep(d);
  co_return v;
}

Coro<void> thrower() {
  co_await tulipa::sleep(1ms);
  throw std::runtime_error("boom");
}

// A task's result comes from its coroutine: Task does not offer Future's completing members.
template <class F>
concept completable_from_outside = requires(F f) { f.set_result(1); } || requires(F f) {
  f.set_exception(std::exception_ptr());
} || requires(F f) { f.try_set_result(1); };
static_assert(!completable_from_outside<tulipa::Task<int>>);
static_assert(completable_from_outside<tulipa::Future<int>>);

TEST(Task, RunsThroughTheLoopAndReturnsItsResult) {
  CoroLoop l;
  auto t = tulipa::create_task(l.loop(), add(2, 3));
  EXPECT_FALSE(t.done());  // the first step is scheduled, not run inline
  EXPECT_EQ(l.loop().ready_count(), 1u);
  EXPECT_EQ(l.run(Future<int>(t)), 5);
  EXPECT_TRUE(t.done());
  EXPECT_EQ(t.result(), 5);
}

TEST(Task, AwaitingACoroRunsItInline) {
  CoroLoop l;
  EXPECT_EQ(l.run(nested(1000)), 1000);
}

TEST(Task, AwaitingATaskFromAnotherTask) {
  CoroLoop l;
  auto outer = [&]() -> Coro<int> {
    auto a = tulipa::create_task(sleepy(1, 10ms));
    auto b = tulipa::create_task(sleepy(2, 20ms));
    int x = co_await a;
    int y = co_await std::move(b);
    co_return x + y;
  };
  EXPECT_EQ(l.run(outer()), 3);
  EXPECT_EQ(l.elapsed(), 20ms);  // both slept concurrently
}

TEST(Task, ExceptionPropagatesToTheAwaiter) {
  CoroLoop l;
  auto outer = [&]() -> Coro<std::string> {
    try {
      co_await thrower();
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no";
  };
  EXPECT_EQ(l.run(outer()), "boom");
  auto t = tulipa::create_task(l.loop(), thrower());
  EXPECT_THROW(l.run(Future<void>(t)), std::runtime_error);
  EXPECT_TRUE(t.exception() != nullptr);
}

Coro<int> fails_after_a_sleep(int depth) {
  if (depth == 0) {
    co_await tulipa::sleep(1ms);
    throw std::runtime_error("deep");
  }
  co_return co_await fails_after_a_sleep(depth - 1) + 1;  // never adds: the exception passes through each level
}
Coro<int> returns(int v) { co_return v; }

TEST(Task, ExceptionsPassThroughNestedCoroutinesAndLeaveNothingBehind) {
  // A failed coroutine hands its exception to whoever resumes next (a per-thread slot, not its promise): check
  // that it crosses several levels, that the next coroutines to finish normally see no stale exception, and that
  // two tasks failing in one loop pass each get their own.
  CoroLoop l;
  auto outer = [&]() -> Coro<int> {
    int caught = 0;
    for (int i = 0; i < 3; ++i) {
      try {
        co_await fails_after_a_sleep(3);
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "deep") ++caught;
      }
      caught += 10 * co_await returns(1);  // completes normally right after a failure
    }
    co_return caught;
  };
  EXPECT_EQ(l.run(outer()), 33);
  auto a = tulipa::create_task(l.loop(), fails_after_a_sleep(2));
  auto b = tulipa::create_task(l.loop(), []() -> Coro<int> {
    co_await tulipa::sleep(1ms);
    throw std::logic_error("other");
  }());
  auto c = tulipa::create_task(l.loop(), returns(7));
  l.drain();
  EXPECT_THROW(a.result(), std::runtime_error);
  EXPECT_THROW(b.result(), std::logic_error);
  EXPECT_EQ(c.result(), 7);
}

TEST(Task, CreateTaskFromACapturingLambdaKeepsTheCaptures) {
  CoroLoop l;
  auto text = std::make_shared<std::string>("kept alive");
  Task<std::string> t = tulipa::create_task(
      l.loop(),
      [text, n = 3]() -> Coro<std::string> {
        co_await tulipa::sleep(1s);  // the temporary lambda is long gone by now
        co_return *text + " " + std::to_string(n);
      },
      "lambda");
  text.reset();
  EXPECT_EQ(t.get_name(), "lambda");
  EXPECT_EQ(l.run(Future<std::string>(t)), "kept alive 3");
}

TEST(Task, NamesAndCurrentTask) {
  CoroLoop l;
  auto body = []() -> Coro<std::string> {
    AnyTask me = tulipa::current_task();
    EXPECT_TRUE(bool(me));
    co_await tulipa::sleep(0ms);
    EXPECT_TRUE(tulipa::current_task() == me);
    co_return me.get_name();
  };
  auto t = tulipa::create_task(l.loop(), body(), "worker");
  EXPECT_EQ(t.get_name(), "worker");
  EXPECT_EQ(l.run(Future<std::string>(t)), "worker");
  auto u = tulipa::create_task(l.loop(), body());
  EXPECT_EQ(u.get_name().rfind("Task-", 0), 0u);
  u.set_name("renamed");
  EXPECT_EQ(l.run(Future<std::string>(u)), "renamed");
  EXPECT_FALSE(bool(tulipa::current_task()));  // outside any step
}

// Default names are made on first use (the task keeps no string until then): they still count creations, stay
// the same once read, and an explicit empty name stays empty.
TEST(Task, DefaultNamesCountCreationsAndAnEmptyNameStaysEmpty) {
  CoroLoop l;
  auto body = []() -> Coro<void> { co_return; };
  auto a = tulipa::create_task(l.loop(), body());
  auto b = tulipa::create_task(l.loop(), body(), "named");
  auto c = tulipa::create_task(l.loop(), body());
  const std::string an = a.get_name(), cn = c.get_name();
  ASSERT_EQ(an.rfind("Task-", 0), 0u);
  ASSERT_EQ(cn.rfind("Task-", 0), 0u);
  EXPECT_EQ(std::stoul(cn.substr(5)), std::stoul(an.substr(5)) + 2);
  EXPECT_EQ(a.get_name(), an);
  EXPECT_EQ(b.get_name(), "named");
  c.set_name("");
  EXPECT_EQ(c.get_name(), "");
  l.run(Future<void>(a));
  l.run(Future<void>(c));
  l.run(Future<void>(b));
  EXPECT_EQ(a.get_name(), an);  // a finished task keeps its name
}

TEST(Task, AllTasksListsUnfinishedOnes) {
  CoroLoop l;
  auto a = tulipa::create_task(l.loop(), sleepy(1, 10ms), "a");
  auto b = tulipa::create_task(l.loop(), sleepy(2, 30ms), "b");
  EXPECT_EQ(tulipa::all_tasks(l.loop()).size(), 2u);
  l.run(Future<int>(a));
  auto left = tulipa::all_tasks(l.loop());
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].get_name(), "b");
  l.run(Future<int>(b));
  EXPECT_TRUE(tulipa::all_tasks(l.loop()).empty());
}

TEST(Task, LoopKeepsATaskAliveWhenEveryHandleIsDropped) {
  CoroLoop l;
  int finished = 0;
  auto body = [&]() -> Coro<void> {
    Future<int> never_shared;  // only this frame refers to it: asyncio could collect the task here
    (void)never_shared;
    co_await tulipa::sleep(50ms);
    ++finished;
  };
  for (int i = 0; i < 10; ++i) (void)tulipa::create_task(l.loop(), body());  // handles dropped at once
  EXPECT_EQ(tulipa::all_tasks(l.loop()).size(), 10u);
  l.drain();
  EXPECT_EQ(finished, 10);
  EXPECT_TRUE(l.reported.empty());
}

TEST(Task, UnretrievedExceptionIsReported) {
  CoroLoop l;
  (void)tulipa::create_task(l.loop(), thrower(), "lost");
  l.drain();
  ASSERT_EQ(l.reported.size(), 1u);
  EXPECT_EQ(l.reported[0].message, "Task exception was never retrieved");
  EXPECT_EQ(l.reported[0].task, "lost");
  EXPECT_EQ(tulipa::describe_exception(l.reported[0].exception), "boom");
}

TEST(Task, RetrievedExceptionIsNotReported) {
  CoroLoop l;
  {
    auto t = tulipa::create_task(l.loop(), thrower());
    l.drain();
    EXPECT_TRUE(t.exception() != nullptr);
  }
  EXPECT_TRUE(l.reported.empty());
}

TEST(Task, TaskDestroyedWhilePendingIsReported) {
  CoroLoop l;
  bool cleaned = false;
  auto body = [&]() -> Coro<void> {
    struct Guard {
      bool& b;
      ~Guard() { b = true; }
    } g{cleaned};
    co_await tulipa::sleep(1h);
  };
  auto t = tulipa::create_task(l.loop(), body(), "stuck");
  l.loop().run_once();  // started, now sleeping
  EXPECT_EQ(tulipa::close_tasks(l.loop()), 1u);
  EXPECT_TRUE(cleaned);  // its frame's destructors ran
  ASSERT_EQ(l.reported.size(), 1u);
  EXPECT_EQ(l.reported[0].message, "Task was destroyed but it is pending");
  EXPECT_EQ(l.reported[0].task, "stuck");
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(t.cancelled()) << (t.cancelled() ? "" : tulipa::describe_exception(t.exception()));
  EXPECT_EQ(l.loop().timer_count(), 0u);  // the sleep's timer went with it
}

TEST(Task, AwaitingItselfIsAnError) {
  CoroLoop l;
  Task<bool> self;
  auto body = [&]() -> Coro<bool> {
    co_await tulipa::sleep(0ms);  // `self` is assigned by then
    try {
      co_await self;
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  };
  self = tulipa::create_task(l.loop(), body());
  EXPECT_TRUE(l.run(Future<bool>(self)));
}

TEST(Task, StepsAreFairAndNeverRecursive) {
  CoroLoop l;
  std::vector<int> order;
  auto body = [&](int id) -> Coro<void> {
    for (int i = 0; i < 3; ++i) {
      order.push_back(id);
      co_await tulipa::sleep(0ms);
    }
  };
  auto a = tulipa::create_task(l.loop(), body(1));
  auto b = tulipa::create_task(l.loop(), body(2));
  l.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 1, 2, 1, 2}));
}

Coro<void> leaf_sleep() { co_await tulipa::sleep(5s); }
Coro<void> middle() { co_await leaf_sleep(); }

TEST(Task, PrintsItsAwaitChain) {
  CoroLoop l;
  auto t = tulipa::create_task(l.loop(), middle(), "chain");
  l.loop().run_once();
  std::ostringstream os;
  t.print_stack(os);
  std::string s = os.str();
  EXPECT_NE(s.find("Task 'chain' pending"), std::string::npos) << s;
  // One frame a line, as source_location names it: g++ says "middle()", clang "(anonymous namespace)::middle()".
  EXPECT_NE(s.find("middle() at "), std::string::npos) << s;
  EXPECT_NE(s.find("leaf_sleep() at "), std::string::npos) << s;
  EXPECT_LT(s.find("middle"), s.find("leaf_sleep")) << s;  // top-down
  EXPECT_NE(s.find("awaiting sleep(5000ms)"), std::string::npos) << s;
  EXPECT_NE(s.find("task_test.cpp"), std::string::npos) << s;

  auto waiter = tulipa::create_task(l.loop(), [](Task<void> other) -> Coro<void> { co_await other; }(t), "waiter");
  l.loop().run_once();
  std::ostringstream all;
  tulipa::dump_tasks(l.loop(), all);
  s = all.str();
  EXPECT_NE(s.find("2 tasks alive"), std::string::npos) << s;
  EXPECT_NE(s.find("awaiting Task 'chain' (pending)"), std::string::npos) << s;
  l.drain();
}

// A foreign awaitable (not a Suspension) whose waiter is resumed by hand.
struct ForeignEvent {
  std::coroutine_handle<> waiter;
  struct Awaiter {
    ForeignEvent* ev;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept { ev->waiter = h; }
    void await_resume() const noexcept {}
  };
  Awaiter operator co_await() noexcept { return {this}; }
};
Coro<int> instant() { co_return 1; }
Coro<void> b_middle(ForeignEvent& ev) {
  co_await ev;
  co_await instant();  // runs while task A is the current task: must be booked on B's chain, not A's
  co_await ev;
}
Coro<void> b_outer(ForeignEvent& ev) { co_await b_middle(ev); }
Coro<void> a_resumes(ForeignEvent& ev) {
  ev.waiter.resume();  // B's coroutine runs inside A's step until it waits on the event again
  co_await leaf_sleep();
}

TEST(Task, AwaitChainsStayRightWhenAForeignAwaitableResumesAnotherTasksCoroutine) {
  CoroLoop l;
  ForeignEvent ev;
  auto b = tulipa::create_task(l.loop(), b_outer(ev), "B");
  l.loop().run_once();
  ASSERT_TRUE(ev.waiter);
  auto a = tulipa::create_task(l.loop(), a_resumes(ev), "A");
  l.loop().run_once();
  std::ostringstream sa, sb;
  a.print_stack(sa);
  b.print_stack(sb);
  EXPECT_NE(sb.str().find("b_middle"), std::string::npos) << sb.str();
  EXPECT_EQ(sb.str().find("instant"), std::string::npos) << sb.str();  // finished: off B's chain
  EXPECT_EQ(sa.str().find("b_middle"), std::string::npos) << sa.str();
  EXPECT_EQ(sa.str().find("instant"), std::string::npos) << sa.str();
  EXPECT_NE(sa.str().find("a_resumes"), std::string::npos) << sa.str();
  EXPECT_NE(sa.str().find("leaf_sleep"), std::string::npos) << sa.str();
  a.cancel();
  l.drain();
  tulipa::close_tasks(l.loop());  // B waits on an event nobody will set: tear it down (reported, destroyed)
}

TEST(Task, DebugModeRemembersTheCreator) {
  CoroLoop l;
  l.loop().set_debug(true);
  Task<void> child;
  auto parent = [&]() -> Coro<void> {
    child = tulipa::create_task(leaf_sleep(), "child");
    co_await child;
  };
  auto p = tulipa::create_task(l.loop(), parent(), "parent");
  l.loop().run_once();
  std::ostringstream os;
  child.print_stack(os);
  EXPECT_NE(os.str().find("created by:\n    | Task 'parent' running"), std::string::npos) << os.str();
  EXPECT_NE(os.str().find("created at"), std::string::npos) << os.str();
  l.drain();
}

Coro<int> handler(int v) {
  // A typical connection handler shape: a few locals and awaits.
  char buf[256];
  buf[0] = char(v);
  co_await tulipa::sleep(0ms);
  co_return buf[0] + v;
}

TEST(Task, SteadyStateSpawnAllocatesNothing) {
  if (!tulipa::detail::frame_cache_enabled) GTEST_SKIP() << "sanitizer build: frames are not recycled";
  CoroLoop l;
  auto spawn_round = [&] {
    std::vector<Task<int>> ts;
    ts.reserve(64);
    for (int i = 0; i < 64; ++i) ts.push_back(tulipa::create_task(l.loop(), handler(i)));
    l.drain();
    for (auto& t : ts) EXPECT_EQ(t.result(), 2 * t.result() / 2);
  };
  spawn_round();  // warms the frame cache, the loop's handle pool and the vector
  spawn_round();
  auto frames_before = tulipa::detail::frame_allocations();
  long before = g_allocs.load();
  spawn_round();
  long after = g_allocs.load();
  EXPECT_EQ(tulipa::detail::frame_allocations(), frames_before);
  // One allocation: the vector of handles in spawn_round itself.
  EXPECT_EQ(after - before, 1);
}

}  // namespace
