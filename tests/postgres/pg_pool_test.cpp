// Pool: exhaustion and acquire timeout, connections in an unknown state are closed, many tasks share a few
// connections, min_idle.
#include <gtest/gtest.h>

#include <set>

#include "pg_env.hpp"
#include "tulipa/postgres/postgres.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace std::chrono_literals;
using namespace tulipa;
using namespace tulipa::postgres;

TEST(PgPool, ExhaustionWaitsThenTimesOut) {
  run([]() -> Coro<void> {
    Pool pool(pgtest::dsn(), {.max_size = 2, .acquire_timeout = 100ms});
    auto a = co_await pool.acquire();
    auto b = co_await pool.acquire();
    EXPECT_EQ(pool.size(), 2u);
    EXPECT_THROW(co_await pool.acquire(), PoolTimeout);
    // A waiter gets the connection given back.
    auto waiter = create_task([&]() -> Coro<int> {
      auto c = co_await pool.acquire();
      co_return c->backend_pid();
    });
    co_await sleep(0ms);  // the waiter is queued
    EXPECT_EQ(pool.waiting(), 1u);
    int pid = a->backend_pid();
    a.release();
    EXPECT_EQ(co_await waiter, pid);
    EXPECT_EQ(pool.size(), 2u);
  }());
}

TEST(PgPool, UnknownStatesAreClosedNotHandedOn) {
  run([]() -> Coro<void> {
    Pool pool(pgtest::dsn(), {.max_size = 1});
    int first;
    {  // left inside a transaction
      auto c = co_await pool.acquire();
      first = c->backend_pid();
      co_await c->query("BEGIN");
    }
    EXPECT_EQ(pool.size(), 0u);
    int second;
    {  // a query abandoned mid-flight (its task cancelled)
      auto c = co_await pool.acquire();
      second = c->backend_pid();
      EXPECT_NE(second, first);
      auto t = create_task([&]() -> Coro<void> { co_await c->query("SELECT pg_sleep(10)"); });
      co_await sleep(0ms);
      t.cancel();
      EXPECT_THROW(co_await t, CancelledError);
      EXPECT_EQ(c->in_flight(), 1u);
    }
    EXPECT_EQ(pool.size(), 0u);
    {  // a clean one is kept
      auto c = co_await pool.acquire();
      EXPECT_NE(c->backend_pid(), second);
      second = c->backend_pid();
      co_await c->query("SELECT 1");
    }
    EXPECT_EQ(pool.idle(), 1u);
    auto c = co_await pool.acquire();
    EXPECT_EQ(c->backend_pid(), second);
  }());
}

TEST(PgPool, ManyTasksShareFewConnections) {
  run([]() -> Coro<void> {
    Pool pool(pgtest::dsn(), {.max_size = 4});
    std::set<int> pids;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 200; ++i) {
      tasks.push_back(create_task([&, i]() -> Coro<void> {
        auto c = co_await pool.acquire();
        pids.insert(c->backend_pid());
        EXPECT_EQ((co_await c->query("SELECT $1::int + 1", i)).scalar<int>(), i + 1);
      }));
    }
    for (auto& t : tasks) co_await t;
    EXPECT_LE(pids.size(), 4u);
    EXPECT_LE(pool.size(), 4u);
    EXPECT_EQ((co_await pool.query("SELECT $1::text || 'b'", "a")).scalar<std::string>(), "ab");
  }());
}

TEST(PgPool, MinIdleIsOpenedInTheBackground) {
  run([]() -> Coro<void> {
    Pool pool(pgtest::dsn(), {.max_size = 5, .min_idle = 2});
    while (pool.idle() < 2) co_await sleep(0ms);  // opening runs in background tasks
    EXPECT_EQ(pool.size(), 2u);
    {
      auto a = co_await pool.acquire();
      while (pool.idle() < 2) co_await sleep(0ms);  // one taken: another is opened
      EXPECT_EQ(pool.size(), 3u);
    }
    EXPECT_EQ(pool.idle(), 3u);
  }());
}

TEST(PgPool, IdleConnectionsAreHealthChecked) {
  run([]() -> Coro<void> {
    Pool pool(pgtest::dsn(), {.max_size = 1, .health_check_after = 0ms});
    int pid;
    {
      auto c = co_await pool.acquire();
      pid = c->backend_pid();
    }
    auto killer = co_await Connection::connect(pgtest::dsn());
    co_await killer.query("SELECT pg_terminate_backend($1)", pid);
    auto c = co_await pool.acquire();  // the dead one is found out and replaced
    EXPECT_NE(c->backend_pid(), pid);
    EXPECT_EQ((co_await c->query("SELECT 3")).scalar<int>(), 3);
  }());
}
