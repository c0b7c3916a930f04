// A server restarted under a pool: each test starts a PostgreSQL of its own (pgtest::PrivateServer).
#include <gtest/gtest.h>

#include "pg_env.hpp"
#include "tulipa/postgres/postgres.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"
#include "tulipa/to_thread.hpp"

using namespace tulipa;
using namespace tulipa::postgres;

TEST(PgRestart, ThePoolRecoversAfterAServerRestart) {
  pgtest::PrivateServer server("pool");
  run([&]() -> Coro<void> {
    Pool pool(server.dsn(), {.max_size = 3});
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 3; ++i) {  // three connections open and idle
      tasks.push_back(create_task([&]() -> Coro<void> {
        auto c = co_await pool.acquire();
        co_await c->query("SELECT pg_sleep(0.05)");
      }));
    }
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(pool.idle(), 3u);
    // Restarted on a worker, so the loop goes on and notices its idle connections being closed.
    co_await to_thread([&] { server.restart(); });
    for (int i = 0; i < 5; ++i) EXPECT_EQ((co_await pool.query("SELECT $1::int", i)).scalar<int>(), i);
    EXPECT_LE(pool.size(), 3u);
  }());
}
