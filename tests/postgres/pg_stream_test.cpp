// LISTEN/NOTIFY and COPY.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "pg_env.hpp"
#include "tulipa/postgres/postgres.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"

using namespace tulipa;
using namespace tulipa::postgres;

TEST(PgListen, NotificationsArriveAsAStream) {
  run([]() -> Coro<void> {
    Listener events(pgtest::dsn());
    co_await events.listen("Room 7");  // quoted: case and space kept
    auto sender = co_await Connection::connect(pgtest::dsn());
    for (int i = 0; i < 3; ++i) co_await sender.query("SELECT pg_notify('Room 7', $1)", "msg " + std::to_string(i));
    co_await sender.query("NOTIFY other, 'not for us'");
    for (int i = 0; i < 3; ++i) {
      Notification n = co_await events.next();
      EXPECT_EQ(n.channel, "Room 7");
      EXPECT_EQ(n.payload, "msg " + std::to_string(i));
      EXPECT_EQ(n.pid, sender.backend_pid());
    }
    co_await events.unlisten("Room 7");
    EXPECT_TRUE(events.channels().empty());
  }());
}

TEST(PgListen, ResubscribesAfterTheConnectionIsLost) {
  run([]() -> Coro<void> {
    Listener events(pgtest::dsn());
    co_await events.listen("news");
    auto other = co_await Connection::connect(pgtest::dsn());
    co_await other.query("SELECT pg_terminate_backend($1)", events.connection().backend_pid());
    auto reader = create_task([&]() -> Coro<std::string> { co_return (co_await events.next()).payload; });
    // Notify until the listener is back and hears one (those sent before it resubscribed are lost, as documented).
    while (!reader.done()) {
      co_await other.query("NOTIFY news, 'back'");
      co_await other.query("SELECT pg_sleep(0.01)");
    }
    EXPECT_EQ(co_await reader, "back");
    EXPECT_EQ(events.reconnects(), 1u);
  }());
}

TEST(PgCopy, AMillionRowsInAndOut) {
  run([]() -> Coro<void> {
    auto c = co_await Connection::connect(pgtest::dsn());
    co_await c.query("CREATE TEMP TABLE big (id int8)");  // one narrow column: the server's part stays short
    constexpr int rows = 1000000;
    auto in = co_await c.copy_in("COPY big FROM STDIN");
    std::string chunk;
    char line[64];
    for (int i = 0; i < rows; ++i) {
      chunk.append(line, static_cast<std::size_t>(std::snprintf(line, sizeof line, "%d\n", i)));
      if (chunk.size() > 60000) {
        co_await in.write(chunk);
        chunk.clear();
      }
    }
    co_await in.write(chunk);
    EXPECT_EQ(co_await in.finish(), static_cast<std::uint64_t>(rows));
    EXPECT_TRUE(c.is_idle());
    EXPECT_EQ((co_await c.query("SELECT sum(id)::int8 FROM big")).scalar<std::int64_t>(),
              std::int64_t{rows} * (rows - 1) / 2);

    auto out = co_await c.copy_out("COPY big TO STDOUT");
    std::uint64_t lines = 0, reads = 0;
    while (auto chunk = co_await out.read()) {
      ++reads;
      EXPECT_EQ(chunk->back(), '\n');  // whole rows
      lines += static_cast<std::uint64_t>(std::count(chunk->begin(), chunk->end(), '\n'));
    }
    EXPECT_EQ(lines, static_cast<std::uint64_t>(rows));
    EXPECT_EQ(out.rows_read(), static_cast<std::uint64_t>(rows));
    EXPECT_EQ(out.rows(), static_cast<std::uint64_t>(rows));
    EXPECT_LT(reads, lines / 100);  // rows come in chunks
    EXPECT_TRUE(c.is_idle());
  }());
}

TEST(PgCopy, QueriesWaitForTheCopyAndErrorsAreClear) {
  run([]() -> Coro<void> {
    auto c = co_await Connection::connect(pgtest::dsn());
    co_await c.query("CREATE TEMP TABLE t (id int)");
    auto in = co_await c.copy_in("COPY t FROM STDIN");
    auto q = create_task([&]() -> Coro<int> {  // issued during the copy: sent after it
      co_return (co_await c.query("SELECT count(*)::int FROM t")).scalar<int>();
    });
    co_await in.write("1\n2\n");
    EXPECT_FALSE(q.done());
    EXPECT_EQ(co_await in.finish(), 2u);
    EXPECT_EQ(co_await q, 2);

    auto bad = co_await c.copy_in("COPY t FROM STDIN");
    co_await bad.write("1\nnot a number\n");
    try {
      co_await bad.finish();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.sqlstate(), "22P02");
    }
    EXPECT_EQ((co_await c.query("SELECT count(*)::int FROM t")).scalar<int>(), 2);
    EXPECT_THROW(co_await c.copy_in("COPY no_such FROM STDIN"), Error);
    EXPECT_TRUE(c.is_idle());
  }());
}
