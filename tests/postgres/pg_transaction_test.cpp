// Transactions as scopes: commit, rollback on exception and on cancellation, nested savepoints.
#include <gtest/gtest.h>

#include <stdexcept>

#include "pg_env.hpp"
#include "tulipa/postgres/postgres.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"

using namespace tulipa;
using namespace tulipa::postgres;

namespace {
Coro<int> count(Connection& c) { co_return (co_await c.query("SELECT count(*)::int FROM t")).scalar<int>(); }
Coro<Connection> with_table() {
  auto c = co_await Connection::connect(pgtest::dsn());
  co_await c.query("CREATE TEMP TABLE t (v int)");
  co_return c;
}
}  // namespace

TEST(PgTransaction, CommitKeepsAndRollbackDrops) {
  run([]() -> Coro<void> {
    auto c = co_await with_table();
    {
      auto tx = co_await c.begin();
      co_await tx.query("INSERT INTO t VALUES ($1)", 1);
      co_await tx.commit();
      EXPECT_FALSE(tx.active());
    }
    {
      auto tx = co_await c.begin();
      co_await tx.query("INSERT INTO t VALUES ($1)", 2);
      co_await tx.rollback();
    }
    EXPECT_EQ(co_await count(c), 1);
    EXPECT_TRUE(c.is_idle());
  }());
}

TEST(PgTransaction, AnExceptionRollsBack) {
  run([]() -> Coro<void> {
    auto c = co_await with_table();
    try {
      auto tx = co_await c.begin();
      co_await tx.query("INSERT INTO t VALUES ($1)", 1);
      throw std::runtime_error("the application changed its mind");
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(co_await count(c), 0);  // runs after the queued ROLLBACK
    EXPECT_TRUE(c.is_idle());
    try {  // a failing statement: the scope rolls back the aborted transaction
      auto tx = co_await c.begin();
      co_await tx.query("INSERT INTO t VALUES ($1)", 1);
      co_await tx.query("INSERT INTO t VALUES (1/0)");
      co_await tx.commit();
    } catch (const Error& e) {
      EXPECT_EQ(e.sqlstate(), "22012");
    }
    EXPECT_EQ(co_await count(c), 0);
    EXPECT_TRUE(c.is_idle());
  }());
}

TEST(PgTransaction, CancellationRollsBack) {
  run([]() -> Coro<void> {
    auto c = co_await with_table();
    auto watcher = co_await Connection::connect(pgtest::dsn());
    int pid = c.backend_pid();
    auto worker = create_task([&]() -> Coro<void> {
      auto tx = co_await c.begin();
      co_await tx.query("INSERT INTO t VALUES ($1)", 1);
      co_await tx.query("SELECT pg_sleep(10)");
      co_await tx.commit();
    });
    while ((co_await watcher.query(pgtest::running_sql(), pid, "pg_sleep")).scalar<int>() == 0) {
    }
    worker.cancel();
    EXPECT_THROW(co_await worker, CancelledError);
    EXPECT_EQ(co_await count(c), 0);
    EXPECT_TRUE(c.is_idle());
  }());
}

TEST(PgTransaction, SavepointsNest) {
  run([]() -> Coro<void> {
    auto c = co_await with_table();
    auto tx = co_await c.begin();
    co_await tx.query("INSERT INTO t VALUES (1)");
    {
      auto sp = co_await tx.savepoint();
      co_await sp.query("INSERT INTO t VALUES (2)");
      {
        auto inner = co_await sp.savepoint();
        co_await inner.query("INSERT INTO t VALUES (3)");
        try {
          co_await inner.query("INSERT INTO t VALUES (1/0)");
        } catch (const Error&) {
        }
      }  // rolls back to the inner savepoint only: 3 is gone, the transaction is usable again
      co_await sp.commit();
    }
    {
      auto sp = co_await tx.savepoint();
      co_await sp.query("INSERT INTO t VALUES (4)");
      co_await sp.rollback();
    }
    co_await tx.commit();
    Result r = co_await c.query("SELECT v FROM t ORDER BY v");
    std::vector<int> got;
    for (Row row : r) got.push_back(row.get<int>(0));
    EXPECT_EQ(got, (std::vector<int>{1, 2}));
  }());
}
