// Cancellation and timeouts: the cancel request runs on a worker thread (PQcancel blocks), so these also run
// under TSan.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "pg_env.hpp"
#include "tulipa/postgres/connection.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"

using namespace std::chrono_literals;
using namespace tulipa;
using namespace tulipa::postgres;

TEST(PgCancel, CancellingTheAwaitingTaskCancelsTheServerQuery) {
  run([]() -> Coro<void> {
    auto conn = co_await Connection::connect(pgtest::dsn());
    auto watcher = co_await Connection::connect(pgtest::dsn());
    int pid = conn.backend_pid();
    auto sleeper = create_task([&]() -> Coro<void> { co_await conn.query("SELECT pg_sleep(10)"); });
    while ((co_await watcher.query(pgtest::running_sql(), pid, "pg_sleep")).scalar<int>() == 0) {
    }
    sleeper.cancel();
    EXPECT_THROW(co_await sleeper, CancelledError);
    EXPECT_TRUE(conn.is_open());
    // Reusable: this waits behind the cancelled pg_sleep, which the cancel request stopped (else: 10 s).
    EXPECT_EQ((co_await conn.query("SELECT 5")).scalar<int>(), 5);
    EXPECT_TRUE(conn.is_idle());
  }());
}

TEST(PgCancel, QueryTimeoutCancelsAndTheConnectionGoesOn) {
  run([]() -> Coro<void> {
    ConnectOptions o;
    o.query_timeout = 300ms;
    auto conn = co_await Connection::connect(pgtest::dsn(), o);
    EXPECT_THROW(co_await conn.query("SELECT pg_sleep(10)"), QueryTimeout);
    EXPECT_EQ((co_await conn.query("SELECT 6")).scalar<int>(), 6);
  }());
}

TEST(PgCancel, QueryTimeoutFiresWhenTheBackendStopsAnswering) {
  run([]() -> Coro<void> {
    ConnectOptions o;
    o.query_timeout = 200ms;
    auto conn = co_await Connection::connect(pgtest::dsn(), o);
    int pid = conn.backend_pid();
    EXPECT_EQ(kill(pid, SIGSTOP), 0);
    bool timed_out = false;
    try {
      co_await conn.query("SELECT 1");
    } catch (const QueryTimeout&) {
      timed_out = true;
    }
    kill(pid, SIGCONT);
    EXPECT_TRUE(timed_out);
    EXPECT_FALSE(conn.is_idle());  // the abandoned query is still in flight: a pool would not hand this on
    conn.close();
    EXPECT_THROW(co_await conn.query("SELECT 1"), ConnectionError);
  }());
}
