// TaskGroup: structured concurrency, error aggregation, and the parent's cancellation (asyncio 3.12/3.13 fixes).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "support/coro_loop.hpp"
#include "tulipa/future.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"
#include "tulipa/taskgroup.hpp"

using namespace std::chrono_literals;
using tulipa::CancelledError;
using tulipa::Coro;
using tulipa::ExceptionGroup;
using tulipa::Future;
using tulipa::Task;
using tulipa::TaskGroup;
using tulipa::test::CoroLoop;

namespace {

Coro<int> slow(tulipa::Duration d, int v) {
  co_await tulipa::sleep(d);
  co_return v;
}

Coro<int> fail_after(tulipa::Duration d, std::string what) {
  co_await tulipa::sleep(d);
  throw std::runtime_error(what);
}

TEST(TaskGroup, WaitsForEveryChild) {
  CoroLoop l;
  auto body = [&]() -> Coro<int> {
    Task<int> a, b;
    int r = co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<int> {
      a = tg.create_task(slow(1s, 1));
      b = tg.create_task(slow(3s, 2));
      EXPECT_EQ(tg.size(), 2u);
      co_return 10;
    });
    EXPECT_TRUE(a.done() && b.done());
    co_return r + a.result() + b.result();
  };
  EXPECT_EQ(l.run(body()), 13);
  EXPECT_EQ(l.elapsed(), 3s);
}

// A child given as a capturing lambda: the group's task owns the lambda, so its captures (a heap string here, which
// ASan would catch if the closure died at the end of the statement) live while the child runs.
TEST(TaskGroup, CreateTaskKeepsACapturingCallableAlive) {
  CoroLoop l;
  std::vector<std::string> greeted;
  auto body = [&]() -> Coro<void> {
    co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<void> {
      for (int i = 0; i < 3; ++i) {
        std::string name = "a name long enough to live on the heap #" + std::to_string(i);
        tg.create_task([name, &greeted]() -> Coro<void> {
          co_await tulipa::sleep(1s);  // the statement that created the child is long over
          greeted.push_back(name);
        });
      }
      co_return;
    });
  };
  l.run(body());
  ASSERT_EQ(greeted.size(), 3u);
  EXPECT_EQ(greeted[2], "a name long enough to live on the heap #2");
}

TEST(TaskGroup, AFailingChildCancelsTheOthersAndTheBody) {
  CoroLoop l;
  int cleaned = 0;
  bool body_cancelled = false;
  auto sibling = [&]() -> Coro<int> {
    struct G {
      int& n;
      ~G() { ++n; }
    } g{cleaned};
    co_await tulipa::sleep(1h);
    co_return 0;
  };
  auto body = [&]() -> Coro<std::string> {
    try {
      co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(sibling());
        tg.create_task(sibling());
        tg.create_task(fail_after(1s, "child failed"));
        try {
          co_await tulipa::sleep(1h);
        } catch (const CancelledError&) {
          body_cancelled = true;
          throw;
        }
      });
    } catch (const ExceptionGroup& g) {
      EXPECT_EQ(g.size(), 1u);
      EXPECT_TRUE(g.contains<std::runtime_error>());
      co_return tulipa::describe_exception(g.exceptions()[0]);
    }
    co_return "no";
  };
  auto t = l.spawn(body);
  EXPECT_EQ(l.run(Future<std::string>(t)), "child failed");
  EXPECT_EQ(cleaned, 2);
  EXPECT_TRUE(body_cancelled);
  EXPECT_EQ(l.elapsed(), 1s);
  EXPECT_EQ(t.cancelling(), 0);  // the group's own cancel() was withdrawn
  EXPECT_TRUE(l.reported.empty());
}

TEST(TaskGroup, EveryErrorComesBackTogether) {
  CoroLoop l;
  auto body = [&]() -> Coro<std::size_t> {
    try {
      co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(fail_after(1s, "one"));
        tg.create_task(fail_after(1s, "two"));
        tg.create_task(slow(1h, 0));
        co_return;
      });
    } catch (const ExceptionGroup& g) {
      EXPECT_STREQ(g.what(), "unhandled errors in a TaskGroup (2 sub-exceptions): one; two");
      co_return g.size();
    }
    co_return 0;
  };
  EXPECT_EQ(l.run(body()), 2u);
}

TEST(TaskGroup, ABodyErrorCancelsTheChildrenAndJoinsTheGroup) {
  CoroLoop l;
  Task<int> child;
  auto body = [&]() -> Coro<bool> {
    try {
      co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<void> {
        child = tg.create_task(slow(1h, 0));
        co_await tulipa::sleep(1s);
        throw std::logic_error("body failed");
      });
    } catch (const ExceptionGroup& g) {
      co_return g.contains<std::logic_error>();
    }
    co_return false;
  };
  EXPECT_TRUE(l.run(body()));
  EXPECT_TRUE(child.cancelled());
}

TEST(TaskGroup, ParentCancelledFromOutsidePropagates) {
  CoroLoop l;
  Task<int> child;
  bool after_group = false;
  auto body = [&]() -> Coro<void> {
    co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<void> {
      child = tg.create_task(slow(1h, 0));
      co_return;  // the body is done: the group waits in exit()
    });
    after_group = true;
  };
  auto t = l.spawn(body);
  l.loop().run_once();
  l.loop().run_once();
  t.cancel("from outside");
  EXPECT_THROW(l.run(Future<void>(t)), CancelledError);
  EXPECT_TRUE(child.cancelled());
  EXPECT_FALSE(after_group);
  EXPECT_TRUE(t.cancelled());
}

TEST(TaskGroup, OutsideCancelWhileAChildFailsIsNotSwallowed) {
  // CPython < 3.12: the group's uncancel() ate the outside cancellation. Here the errors win (as in asyncio) and
  // the outside cancellation is re-armed for the task's next suspension point.
  CoroLoop l;
  std::vector<std::string> log;
  auto body = [&]() -> Coro<void> {
    try {
      co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(fail_after(1s, "child failed"));
        co_await tulipa::sleep(1h);
      });
    } catch (const ExceptionGroup&) {
      log.push_back("group error");
    }
    co_await tulipa::sleep(1s);  // the outside cancellation lands here
    log.push_back("not reached");
  };
  auto t = l.spawn(body);
  l.loop().call_later(1s, [&] { t.cancel("outside"); });  // same pass as the child's failure
  EXPECT_THROW(l.run(Future<void>(t)), CancelledError);
  EXPECT_EQ(log, (std::vector<std::string>{"group error"}));
}

TEST(TaskGroup, OutsideCancelDuringTheBodyWithNoErrors) {
  CoroLoop l;
  auto body = [&]() -> Coro<void> {
    co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<void> {
      tg.create_task(slow(1h, 0));
      co_await tulipa::sleep(1h);
    });
  };
  auto t = l.spawn(body);
  l.loop().call_later(5s, [&] { t.cancel(); });
  EXPECT_THROW(l.run(Future<void>(t)), CancelledError);
  EXPECT_EQ(l.elapsed(), 5s);
}

TEST(TaskGroup, TheParentGoesOnAfterCatchingTheGroupsError) {
  // The group cancelled its parent to stop the body; that cancellation must not leak past the group.
  CoroLoop l;
  auto body = [&]() -> Coro<int> {
    try {
      co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(fail_after(1s, "x"));
        co_await tulipa::sleep(1h);
      });
    } catch (const ExceptionGroup&) {
    }
    co_await tulipa::sleep(1s);
    co_return 1;
  };
  EXPECT_EQ(l.run(body()), 1);
}

TEST(TaskGroup, NoNewTasksOnceShuttingDown) {
  CoroLoop l;
  bool ran = false;
  auto late = [&]() -> Coro<int> {
    ran = true;
    co_return 0;
  };
  auto body = [&]() -> Coro<bool> {
    bool refused = false;
    try {
      co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(fail_after(0s, "x"));
        try {
          co_await tulipa::sleep(1h);
        } catch (const CancelledError&) {
        }
        try {
          tg.create_task(late());
        } catch (const std::logic_error&) {
          refused = true;
        }
      });
    } catch (const ExceptionGroup&) {
    }
    co_return refused;
  };
  EXPECT_TRUE(l.run(body()));
  EXPECT_FALSE(ran);
}

TEST(TaskGroup, TornDownWhileAChildsCompletionIsScheduled) {
  CoroLoop l;
  Future<void> release(l.loop());
  auto child = [](Future<void> f) -> Coro<int> {
    co_await f;
    co_return 1;
  };
  auto body = [&]() -> Coro<void> {
    co_await tulipa::task_group([&](TaskGroup& tg) -> Coro<void> {
      tg.create_task(child(release));
      co_await tulipa::sleep(1h);
    });
  };
  auto t = l.spawn(body);
  l.loop().run_once();
  l.loop().run_once();                           // the body sleeps, the child waits for `release`
  release.set_result();                          // the child wakes...
  l.loop().run_once();                           // ...and finishes: the group's handling of it is scheduled
  EXPECT_EQ(tulipa::close_tasks(l.loop()), 1u);  // the parent is torn down with its group
  l.drain();                                     // the orphaned handling runs and only frees its record (ASan checks)
  EXPECT_TRUE(t.done());
  ASSERT_EQ(l.reported.size(), 1u);
  EXPECT_EQ(l.reported[0].message, "Task was destroyed but it is pending");
}

TEST(TaskGroup, OutsideATaskIsAnError) { EXPECT_THROW(TaskGroup(), std::logic_error); }

}  // namespace
