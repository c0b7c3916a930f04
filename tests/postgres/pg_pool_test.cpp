// Pool: exhaustion and acquire timeout, connections in an unknown state drained or closed, an idle connection whose
// backend was terminated, connections given back during a COPY, many tasks share a few connections, min_idle, health
// checks.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <string>

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

TEST(PgPool, UnknownStatesAreDrainedThenReused) {
  run([]() -> Coro<void> {
    Pool pool(pgtest::dsn(), {.max_size = 1});
    int pid;
    {  // left inside a transaction (with something to undo)
      auto c = co_await pool.acquire();
      pid = c->backend_pid();
      co_await c->query("BEGIN");
      co_await c->query("CREATE TEMP TABLE drained_away (x int)");
    }
    {  // rolled back, then handed on: the same backend, outside any transaction, the table gone
      auto c = co_await pool.acquire();
      EXPECT_EQ(c->backend_pid(), pid);
      EXPECT_TRUE(c->is_idle());
      EXPECT_EQ((co_await c->query("SELECT count(*)::int FROM pg_class WHERE relname = 'drained_away'")).scalar<int>(),
                0);
      co_await c->query("BEGIN");  // and a failed transaction (the server refuses everything until ROLLBACK)
      EXPECT_THROW(co_await c->query("SELECT 1 / $1", 0), Error);
    }
    {
      auto c = co_await pool.acquire();
      EXPECT_EQ(c->backend_pid(), pid);
      EXPECT_EQ((co_await c->query("SELECT 2")).scalar<int>(), 2);
      // A query abandoned mid-flight (its task cancelled): the cancel request stops it, then the pool reuses it.
      auto t = create_task([&]() -> Coro<void> { co_await c->query("SELECT pg_sleep(10)"); });
      auto watcher = co_await Connection::connect(pgtest::dsn());
      while ((co_await watcher.query(pgtest::running_sql(), pid, "pg_sleep")).scalar<int>() == 0) {
      }
      t.cancel();
      EXPECT_THROW(co_await t, CancelledError);
      EXPECT_EQ(c->in_flight(), 1u);
    }
    EXPECT_EQ(pool.size(), 1u);        // being drained: still counted, not lent
    auto c = co_await pool.acquire();  // waits for the drain (else: 10 s of pg_sleep)
    EXPECT_EQ(c->backend_pid(), pid);
    EXPECT_TRUE(c->is_idle());
    EXPECT_EQ((co_await c->query("SELECT 3")).scalar<int>(), 3);
  }());
}

TEST(PgPool, UnknownStatesAreClosedWhenDrainingIsOff) {
  run([]() -> Coro<void> {
    Pool pool(pgtest::dsn(), {.max_size = 1, .drain_timeout = Duration::zero()});
    int first;
    {
      auto c = co_await pool.acquire();
      first = c->backend_pid();
      co_await c->query("BEGIN");
    }
    EXPECT_EQ(pool.size(), 0u);
    int second;
    {  // a query in flight when given back
      auto c = co_await pool.acquire();
      second = c->backend_pid();
      EXPECT_NE(second, first);
      auto t = create_task([&]() -> Coro<void> { co_await c->query("SELECT pg_sleep(10)"); });
      co_await sleep(0ms);
      t.cancel();
      EXPECT_THROW(co_await t, CancelledError);
    }
    EXPECT_EQ(pool.size(), 0u);
    auto c = co_await pool.acquire();
    EXPECT_NE(c->backend_pid(), second);
  }());
}

namespace {
// Waits (bounded) until the backend process `pid` has exited: the server saw the connection go.
bool backend_exits(int pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;  // gone already
  pollfd exited{fd, POLLIN, 0};
  bool gone = ::poll(&exited, 1, 10000) == 1;
  ::close(fd);
  return gone;
}
}  // namespace

// A connection given back in the middle of a COPY is closed, never drained nor lent again: given back with its
// CopyIn still open (which then fails instead of writing), and after its CopyOut was abandoned mid-stream.
TEST(PgPool, ConnectionsGivenBackDuringCopyAreClosed) {
  run([]() -> Coro<void> {
    Pool pool(pgtest::dsn(), {.max_size = 1});  // draining on (the default): a COPY is still never drained
    int first, second;
    {
      auto c = co_await pool.acquire();
      first = c->backend_pid();
      co_await c->query("CREATE TEMP TABLE copied_back (x int)");
      auto in = co_await c->copy_in("COPY copied_back FROM STDIN");
      co_await in.write("1\n2\n");
      c.release();
      EXPECT_FALSE(c->is_open());
      EXPECT_EQ(pool.size(), 0u);
      EXPECT_EQ(pool.idle(), 0u);
      EXPECT_THROW(co_await in.write("3\n"), ConnectionError);
      EXPECT_THROW(co_await in.finish(), ConnectionError);
    }
    EXPECT_TRUE(backend_exits(first));
    {
      auto c = co_await pool.acquire();
      second = c->backend_pid();
      EXPECT_NE(second, first);
      {
        auto out = co_await c->copy_out("COPY (SELECT generate_series(1, 200000)) TO STDOUT");
        auto rows = co_await out.read();
        EXPECT_TRUE(rows && !rows->empty());
      }  // abandoned with rows still coming
      EXPECT_FALSE(c->is_open());
    }
    EXPECT_EQ(pool.size(), 0u);
    EXPECT_TRUE(backend_exits(second));
    auto c = co_await pool.acquire();
    EXPECT_NE(c->backend_pid(), first);
    EXPECT_NE(c->backend_pid(), second);
    EXPECT_EQ((co_await c->query("SELECT 1")).scalar<int>(), 1);
  }());
}

// The server ends an idle pooled connection's backend, and the loop has not polled since: pool.query() finds it out
// before sending anything and runs on a new connection.
TEST(PgPool, QueryAfterTheIdleConnectionsBackendWasTerminated) {
  run([]() -> Coro<void> {
    Pool pool(pgtest::dsn(), {.max_size = 2});
    int pid;
    {
      auto c = co_await pool.acquire();
      pid = c->backend_pid();
    }
    EXPECT_EQ(pool.idle(), 1u);
    // Blocking on purpose (libpq's synchronous calls, on this thread): the loop must not run until the backend is
    // gone, so only the pool's own look at the socket can find it out.
    int backend = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    EXPECT_GE(backend, 0);
    if (backend < 0) co_return;
    PGconn* killer = PQconnectdb(pgtest::dsn().c_str());
    PGresult* r = PQexecParams(killer, ("SELECT pg_terminate_backend(" + std::to_string(pid) + ")").c_str(), 0, nullptr,
                               nullptr, nullptr, nullptr, 0);
    EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(killer);
    pollfd exited{backend, POLLIN, 0};
    EXPECT_EQ(::poll(&exited, 1, 10000), 1);  // the backend process has exited (its FATAL and EOF are ours to read)
    ::close(backend);
    EXPECT_EQ(pool.idle(), 1u);
    Result now = co_await pool.query("SELECT pg_backend_pid()");
    EXPECT_NE(now.scalar<int>(), pid);
    EXPECT_EQ(pool.size(), 1u);
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
