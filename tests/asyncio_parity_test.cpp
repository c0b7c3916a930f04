// Where tulipa once differed from asyncio (issue 10), one test each: the awaitables resume one loop iteration after
// their wake-up (sleep(0) included), a task that cancelled itself passes the cancellation to what it then awaits,
// run_until_complete cleans up after itself and refuses another loop's future, create_task on a closed loop fails,
// cancel() on a failed future silences its report, Semaphore keeps FIFO order through its hand-overs, drain() after
// close() raises, and writes to a lost connection are counted and logged once. (The cases that need a second
// thread are in asyncio_parity_threads_test.cpp.)
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "support/net_util.hpp"
#include "support/stream_echo.hpp"
#include "tulipa/combinators.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"

using namespace tulipa;
using namespace std::chrono_literals;

namespace {

// Records what the loop's exception handler is given.
struct Reports {
  explicit Reports(EventLoop& loop) {
    loop.set_exception_handler([this](EventLoop&, const ErrorContext& c) { messages.push_back(c.message); });
  }
  std::vector<std::string> messages;
};

}  // namespace

// ------------------------------------------------------------------------------- one hop from wake-up to resumption

TEST(AsyncioParity, SleepZeroResumesInTheNextIteration) {
  EventLoop loop;
  std::vector<std::string> order;
  auto t = create_task(loop, [&]() -> Coro<void> {
    order.push_back("step 1");
    loop.call_soon([&] { order.push_back("callback"); });
    co_await sleep(0s);
    order.push_back("step 2");
  });
  loop.run_once();  // the first step, up to sleep(0)
  EXPECT_EQ(order, (std::vector<std::string>{"step 1"}));
  loop.run_once();  // asyncio: the callback scheduled before the yield, then the task, in this very iteration
  EXPECT_EQ(order, (std::vector<std::string>{"step 1", "callback", "step 2"}));
  EXPECT_TRUE(t.done());
}

TEST(AsyncioParity, FuturesTasksAndEventsResumeTheirWaiterInTheNextIteration) {
  EventLoop loop;
  Future<int> fut(loop);
  Event event;
  int got = 0;
  bool evented = false;
  auto a = create_task(loop, [&]() -> Coro<void> { got = co_await fut; });
  auto b = create_task(loop, [&]() -> Coro<void> {
    co_await event.wait();
    evented = true;
  });
  Task<int> inner;
  int from_task = 0;
  auto c = create_task(loop, [&]() -> Coro<void> { from_task = co_await inner; });
  inner = create_task(loop, []() -> Coro<int> { co_return 7; });
  loop.run_once();  // every task reaches its await; `inner` finishes after c awaits it, which wakes c
  EXPECT_EQ(from_task, 0);
  fut.set_result(5);
  event.set();
  loop.run_once();  // one iteration later, all three resume
  EXPECT_EQ(got, 5);
  EXPECT_TRUE(evented);
  EXPECT_EQ(from_task, 7);
  EXPECT_TRUE(a.done() && b.done() && c.done());
}

TEST(AsyncioParity, CancelAfterTheWakeUpOfASleepRaisesAtTheSleep) {
  EventLoop loop;
  bool after = false;
  auto t = create_task(loop, [&]() -> Coro<void> {
    co_await sleep(0s);
    after = true;
  });
  loop.run_once();  // suspended in sleep(0), already woken
  t.cancel();
  loop.run_once();
  EXPECT_TRUE(t.done() && t.cancelled());
  EXPECT_FALSE(after);
}

// ------------------------------------------------------------------------------------------- self-cancellation

TEST(AsyncioParity, ASelfCancelledTaskCancelsTheTaskItAwaits) {
  EventLoop loop;
  bool inner_saw_cancel = false;
  auto inner = create_task(loop, [&]() -> Coro<void> {
    try {
      co_await sleep(3600s);
    } catch (const CancelledError&) {
      inner_saw_cancel = true;
      throw;
    }
  });
  auto outer = create_task(loop, [&]() -> Coro<void> {
    current_task().cancel("stop");
    co_await inner;
  });
  EXPECT_THROW(run_until_complete(loop, Future<void>(outer)), CancelledError);
  EXPECT_TRUE(outer.cancelled());
  EXPECT_TRUE(inner.done() && inner.cancelled());
  EXPECT_TRUE(inner_saw_cancel);
}

TEST(AsyncioParity, ASelfCancelledTaskCancelsTheFutureAndGatherItAwaits) {
  EventLoop loop;
  Future<int> fut(loop);
  auto t = create_task(loop, [&]() -> Coro<void> {
    current_task().cancel();
    (void)co_await fut;
  });
  EXPECT_THROW(run_until_complete(loop, Future<void>(t)), CancelledError);
  EXPECT_TRUE(fut.cancelled());

  auto child = create_task(loop, []() -> Coro<void> { co_await sleep(3600s); });
  auto g = create_task(loop, [&]() -> Coro<void> {
    current_task().cancel();
    co_await gather(child);
  });
  EXPECT_THROW(run_until_complete(loop, Future<void>(g)), CancelledError);
  EXPECT_TRUE(child.done() && child.cancelled());
}

// --------------------------------------------------------------------------------------- run_until_complete

TEST(AsyncioParity, RunUntilCompleteRemovesItsCallbackWhenStoppedEarly) {
  EventLoop loop;
  Future<int> first(loop);
  loop.call_soon([&] { loop.stop(); });
  EXPECT_THROW(run_until_complete(loop, first), std::runtime_error);
  first.set_result(1);  // a callback left on `first` would now be scheduled, and stop the next run
  Future<int> second(loop);
  loop.call_soon([&] { loop.call_soon([&] { second.set_result(2); }); });
  EXPECT_EQ(run_until_complete(loop, second), 2);
  EXPECT_EQ(run_until_complete(loop, first), 1);
}

TEST(AsyncioParity, RunUntilCompleteRefusesAFutureOfAnotherLoop) {
  EventLoop loop;
  EventLoop other;
  Future<int> f(other);
  EXPECT_THROW(run_until_complete(loop, f), std::invalid_argument);
  f.set_result(3);
  EXPECT_EQ(run_until_complete(other, f), 3);
}

// ------------------------------------------------------------------------------------------------- create_task

TEST(AsyncioParity, CreateTaskOnAClosedLoopFailsAndDestroysTheCoroutine) {
  EventLoop loop;
  loop.close();
  auto token = std::make_shared<int>(0);
  EXPECT_THROW(create_task(loop,
                           [](std::shared_ptr<int> t) -> Coro<void> {
                             ++*t;
                             co_return;
                           }(token)),
               std::logic_error);
  EXPECT_EQ(token.use_count(), 1);  // the frame (holding a copy) is gone
  EXPECT_EQ(*token, 0);             // and it never ran
}

// ------------------------------------------------------------------------------------- cancel() and retrieval

TEST(AsyncioParity, CancelOnAFailedFutureMarksItsExceptionRetrieved) {
  EventLoop loop;
  Reports reports(loop);
  {
    Future<int> f(loop);
    f.set_exception(std::runtime_error("unseen"));
  }
  ASSERT_EQ(reports.messages.size(), 1u);  // the control: dropped unseen, it is reported
  EXPECT_EQ(reports.messages[0], "Future exception was never retrieved");
  {
    Future<int> f(loop);
    f.set_exception(std::runtime_error("seen by cancel"));
    EXPECT_FALSE(f.cancel());
  }
  {
    auto t = create_task(loop, []() -> Coro<void> {
      throw std::runtime_error("task failure");
      co_return;
    });
    while (!t.done()) loop.run_once();
    EXPECT_FALSE(AnyTask(t).cancel());
  }
  EXPECT_EQ(reports.messages.size(), 1u);
}

// ------------------------------------------------------------------------------------------------- Semaphore

// CPython's test_locks SemaphoreTests.test_acquire_fifo_order_2: a unit handed to a woken waiter stays reserved, so
// the waiter that released and re-acquires queues behind it.
TEST(AsyncioParity, SemaphoreKeepsHandedOverUnitsReservedUntilTheirWaiterRuns) {
  EventLoop loop;
  Semaphore sem(1);
  std::vector<int> result;
  auto c1 = create_task(loop, [&]() -> Coro<void> {
    co_await sem.acquire();
    result.push_back(1);
  });
  auto c2 = create_task(loop, [&]() -> Coro<void> {
    co_await sem.acquire();
    result.push_back(2);
    sem.release();
    co_await sem.acquire();
    result.push_back(4);
  });
  auto c3 = create_task(loop, [&]() -> Coro<void> {
    co_await sem.acquire();
    result.push_back(3);
  });
  loop.run_once();            // c1 holds the unit, c2 and c3 wait
  sem.release();              // to c2
  sem.release();              // to c3
  EXPECT_TRUE(sem.locked());  // both units are reserved for woken waiters
  bool newcomer = false;
  auto late = create_task(loop, [&]() -> Coro<void> {
    co_await sem.acquire();
    newcomer = true;
  });
  run_until_complete(loop, Future<void>(c3));
  run_until_complete(loop, Future<void>(c2));
  EXPECT_TRUE(c1.done());
  EXPECT_EQ(result, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_FALSE(newcomer);  // every unit is held now: the newcomer still waits
  sem.release();
  run_until_complete(loop, Future<void>(late));
  EXPECT_TRUE(newcomer);
}

// ------------------------------------------------------------------------------------------------- streams

TEST(AsyncioParity, DrainAfterCloseRaisesConnectionReset) {
  EventLoop loop;
  Server server = start_server(loop, test::echo_lines, "127.0.0.1", 0);
  const std::uint16_t port = test::port_of(server);
  run_until_complete(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port);
    writer.write("line\n");
    writer.close();
    try {
      co_await writer.drain();
      ADD_FAILURE() << "drain() after close() returned normally";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNRESET);
    }
  }(loop, port));
  server.close();
  Future<void> closed(loop);
  server.wait_closed([closed]() mutable { closed.set_result(); });
  run_until_complete(loop, closed);
}

// -------------------------------------------------------------------------------------------- lost writes

TEST(AsyncioParity, WritesAfterTheConnectionWasLostAreCountedAndLoggedOnceFromTheFifth) {
  EventLoop loop;
  std::vector<std::string> lines;
  loop.set_log_handler([&](std::string_view line) { lines.emplace_back(line); });
  test::Log server_log;
  Server server = create_server(loop, test::recorder_factory(server_log), "127.0.0.1", 0);
  test::Log log;
  Transport* t = test::connect_to(loop, SocketAddress::parse("127.0.0.1", test::port_of(server)), log);
  ASSERT_NE(t, nullptr);
  t->close();
  for (int i = 0; i < 4; ++i) t->write("dropped");  // lost already (close() with nothing to flush)
  EXPECT_TRUE(lines.empty());
  t->write("the fifth");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("socket.send() raised exception"), std::string::npos) << lines[0];
  for (int i = 0; i < 10; ++i) t->write("more");
  EXPECT_EQ(lines.size(), 1u);  // once
  ASSERT_TRUE(test::run_until(loop, [&] { return log.lost == 1 && server_log.lost == 1; }));
  EXPECT_EQ(server_log.received, "");  // nothing written after close() went out
}
