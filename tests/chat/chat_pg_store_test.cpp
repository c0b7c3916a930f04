// The PostgreSQL store (apps/chat/store/pg_store.hpp) against a real PostgreSQL 15 (the postgres_server fixture,
// tests/postgres/pg_server.sh): the stores' contract (store_contract.hpp), and two stores (two instances of the
// server) writing one room at once without ever sharing a seq; and the real binary killed with SIGKILL under load on
// a PostgreSQL store loses no message any client saw (chat_process.hpp, the test chat_binary_test runs on SQLite).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "chat_process.hpp"
#include "pg_env.hpp"
#include "store/pg_store.hpp"
#include "store_contract.hpp"
#include "tulipa/postgres/connection.hpp"

using namespace chat;
using namespace chat::test;
namespace pg = tulipa::postgres;

namespace {

template <class T>
T run(tulipa::EventLoop& loop, tulipa::Coro<T> coro) {
  tulipa::Task<T> t = tulipa::create_task(loop, std::move(coro));
  EXPECT_TRUE(tulipa::test::run_until(loop, [&] { return t.done(); }));
  return t.take_result();
}

// A database of the test's own, so that the tests start from empty tables.
tulipa::Coro<std::string> fresh_database(std::string name) {
  pg::Connection admin = co_await pg::Connection::connect(pgtest::dsn());
  co_await admin.query("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  co_await admin.query("CREATE DATABASE " + name);
  co_return pgtest::dsn() + " dbname=" + name;
}

std::unique_ptr<PgStore> open(tulipa::EventLoop& loop, const std::string& dsn) { return run(loop, PgStore::open(dsn)); }

TEST(PgStore, KeepsTheStoresContract) {
  tulipa::EventLoop loop;
  std::string dsn = run(loop, fresh_database("chat_contract"));
  std::unique_ptr<PgStore> store = open(loop, dsn);
  check_store_contract(loop, *store);
  EXPECT_LT(store->transactions(), 200u);  // the burst went in batches
  EXPECT_NE(store->describe().find("PostgreSQL"), std::string::npos);
}

TEST(PgStore, TwoInstancesWritingOneRoomAtOnceNeverShareASeq) {
  tulipa::EventLoop loop;
  std::string dsn = run(loop, fresh_database("chat_two_writers"));
  std::unique_ptr<PgStore> one = open(loop, dsn);
  std::unique_ptr<PgStore> two = open(loop, dsn);  // the schema exists: opening again changes nothing
  std::vector<Message> stored;
  std::size_t done = 0;
  constexpr int each = 150;
  for (int i = 0; i < each; ++i) {
    for (PgStore* s : {one.get(), two.get()}) {
      s->append(room_message("lobby", s == one.get() ? "one" : "two", std::to_string(i)),
                [&](Message m, std::exception_ptr e) {
                  EXPECT_FALSE(e);
                  stored.push_back(std::move(m));
                  ++done;
                });
    }
  }
  ASSERT_TRUE(tulipa::test::run_until(loop, [&] { return done == 2 * each; }));
  std::sort(stored.begin(), stored.end(), [](const Message& a, const Message& b) { return a.seq < b.seq; });
  for (std::size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].seq, i + 1);
    if (i > 0) {
      EXPECT_GT(stored[i].id, stored[i - 1].id) << "ids increase with seq";
    }
  }
  // Read back in id order: the same order.
  std::vector<Message> back = after(loop, *one, "lobby", 0, 1000);
  ASSERT_EQ(back.size(), stored.size());
  for (std::size_t i = 0; i < back.size(); ++i) EXPECT_EQ(back[i].seq, i + 1);
  flush(loop, *one);
  flush(loop, *two);
}

TEST(PgStore, AnUnreachableServerIsAClearError) {
  tulipa::EventLoop loop;
  tulipa::Task<std::unique_ptr<PgStore>> t =
      tulipa::create_task(loop, PgStore::open("postgresql://nobody@127.0.0.1:1/none?connect_timeout=5"));
  ASSERT_TRUE(tulipa::test::run_until(loop, [&] { return t.done(); }));
  EXPECT_THROW(t.result(), pg::ConnectionError);
}

TEST(PgStore, TheServerKilledUnderLoadLosesNoMessageAnyClientSaw) {
  tulipa::EventLoop loop;
  run(loop, fresh_database("chat_sigkill"));
  check_sigkill_under_load_loses_no_message("postgres://postgres@127.0.0.1:" + pgtest::port() + "/chat_sigkill");
}

}  // namespace
