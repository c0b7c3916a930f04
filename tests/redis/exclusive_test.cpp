// Exclusive connections from the pool against a real redis-server: MULTI/EXEC and WATCH, BLPOP with a timeout,
// with a value, and cancelled (its connection is closed, no value is lost), XREAD BLOCK, reuse of clean
// connections and the pool's bound.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "redis/redis_test_util.hpp"
#include "tulipa/redis/client.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace tulipa;
using namespace std::chrono_literals;
using test::fixture_options;
using test::key;

namespace {

template <class F>
void run_test(F body) {
  tulipa::run(body());
}

TEST(RedisExclusive, MultiExecAndWatch) {
  run_test([]() -> Coro<void> {
    redis::Client c(get_running_loop(), fixture_options());
    std::string k = key("balance");
    co_await c.set(k, "10");
    {
      redis::Connection tx = co_await c.exclusive();
      co_await tx.command("WATCH", k);
      co_await tx.command("MULTI");
      EXPECT_EQ((co_await tx.command("INCRBY", k, 5)).str(), "QUEUED");
      EXPECT_EQ((co_await tx.command("GET", k)).str(), "QUEUED");
      redis::Reply r = co_await tx.command("EXEC");
      EXPECT_EQ(r.size(), 2u);
      EXPECT_EQ(r[0].integer(), 15);
      EXPECT_EQ(r[1].str(), "15");
    }
    {
      // Another client changes the watched key: EXEC answers null.
      redis::Connection tx = co_await c.exclusive();
      co_await tx.command("WATCH", k);
      co_await c.set(k, "99");
      co_await tx.command("MULTI");
      co_await tx.command("INCR", k);
      EXPECT_TRUE((co_await tx.command("EXEC")).is_null());
    }
    EXPECT_EQ(co_await c.get(k), std::optional<std::string>("99"));
    // Both transactions ended cleanly: one connection served both, plus the shared one.
    EXPECT_EQ(c.connections_opened(), 2u);
    {
      // Left in MULTI: not returned to the pool but closed.
      redis::Connection tx = co_await c.exclusive();
      co_await tx.command("MULTI");
    }
    redis::Connection fresh = co_await c.exclusive();
    EXPECT_EQ((co_await fresh.command("SET", k, "1")).str(), "OK");  // not queued: a new connection
    EXPECT_EQ(c.connections_opened(), 3u);
    co_await c.del(k);
  });
}

TEST(RedisExclusive, BlpopTimeoutAndValue) {
  run_test([]() -> Coro<void> {
    redis::Client c(get_running_loop(), fixture_options());
    std::string q = key("q");
    co_await c.del(q);
    redis::Connection conn = co_await c.exclusive();
    EXPECT_EQ(co_await conn.blpop(50ms, q), std::nullopt);
    auto waiter = create_task([](redis::Connection& conn, std::string q) -> Coro<std::optional<redis::KeyValue>> {
      co_return co_await conn.blpop(0ms, key("other"), q);
    }(conn, q));
    // The shared connection is not blocked by the exclusive one.
    EXPECT_EQ((co_await c.ping()).str(), "PONG");
    co_await c.lpush(q, "job-1");
    auto got = co_await waiter;
    EXPECT_TRUE(got.has_value());
    if (got) {
      EXPECT_EQ(got->key, q);
      EXPECT_EQ(got->value, "job-1");
    }
    // XREAD BLOCK with a timeout, then with an entry.
    std::string s = key("stream");
    co_await c.del(s);
    EXPECT_TRUE((co_await conn.xread_block(s, "$", 30ms)).empty());
    auto reader = create_task([](redis::Connection& conn, std::string s) -> Coro<std::size_t> {
      auto r = co_await conn.xread_block(s, "0-0", 0ms);
      co_return r.empty() ? 0 : r[0].entries.size();
    }(conn, s));
    co_await c.xadd(s, {}, "f", "v");
    EXPECT_EQ(co_await reader, 1u);
    co_await c.del(s);
  });
}

TEST(RedisExclusive, CancelledBlpopClosesItsConnectionAndLosesNothing) {
  run_test([]() -> Coro<void> {
    redis::Client c(get_running_loop(), fixture_options());
    std::string q = key("q");
    co_await c.del(q);
    std::string name = key("blocked");
    auto waiter = create_task([](redis::Client& c, std::string q, std::string name) -> Coro<void> {
      redis::Connection conn = co_await c.exclusive();
      co_await conn.command("CLIENT", "SETNAME", name);
      (void)co_await conn.blpop(0ms, q);
      ADD_FAILURE() << "BLPOP returned";
    }(c, q, name));
    // Wait (by asking the server) until the BLPOP is blocked there.
    auto blocked = [&]() -> Coro<bool> {
      redis::Reply list = co_await c.command("CLIENT", "LIST");
      std::string s(list.str());
      auto at = s.find("name=" + name);
      co_return at != std::string::npos&& s.find("cmd=blpop", at) < s.find('\n', at);
    };
    for (int i = 0; i < 1000 && !co_await blocked(); ++i) co_await sleep(1ms);
    EXPECT_TRUE(co_await blocked());
    waiter.cancel();
    EXPECT_THROW(co_await waiter, CancelledError);
    // The blocked connection was closed: wait until the server saw it go, then the value stays in the list.
    for (int i = 0; i < 1000; ++i) {
      std::string s((co_await c.command("CLIENT", "LIST")).str());
      if (s.find("name=" + name) == std::string::npos) break;
      co_await sleep(1ms);
    }
    co_await c.lpush(q, "kept");
    EXPECT_EQ((co_await c.command("LLEN", q)).integer(), 1);
    co_await c.del(q);
  });
}

TEST(RedisExclusive, PoolBoundsAndReuse) {
  run_test([]() -> Coro<void> {
    auto o = fixture_options();
    o.max_exclusive = 2;
    redis::Client c(get_running_loop(), o);
    redis::Connection a = co_await c.exclusive();
    redis::Connection b = co_await c.exclusive();
    co_await a.ping();
    co_await b.ping();
    bool third = false;
    auto t = create_task([](redis::Client& c, bool& third) -> Coro<void> {
      redis::Connection x = co_await c.exclusive();
      third = true;
      co_await x.ping();
    }(c, third));
    co_await sleep(0s);
    co_await sleep(0s);
    EXPECT_FALSE(third);  // the pool is exhausted
    {
      redis::Connection gone = std::move(a);
    }
    co_await t;
    EXPECT_TRUE(third);
    EXPECT_EQ(c.connections_opened(), 2u);  // the third reused a's connection
  });
}

}  // namespace
