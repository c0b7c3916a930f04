// tulipa::postgres::Connection against a real PostgreSQL 15 (the postgres_server fixture).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "pg_env.hpp"
#include "tulipa/postgres/connection.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace std::chrono_literals;
using namespace tulipa;
using namespace tulipa::postgres;

namespace {

// A loopback socket that listens and never answers (the kernel completes the TCP handshake, nobody speaks).
struct SilentServer {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int port = 0;
  SilentServer() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd, 8);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~SilentServer() { close(fd); }
};

int closed_port() {
  SilentServer s;
  return s.port;  // closed when s goes
}

}  // namespace

TEST(PgConnection, TypedRoundTrip) {
  run([]() -> Coro<void> {
    auto conn = co_await Connection::connect(pgtest::dsn());
    std::vector<std::byte> blob{std::byte{0}, std::byte{1}, std::byte{0xff}};
    Timestamp ts = std::chrono::sys_days{std::chrono::year{2024} / 2 / 29} + 13h + 5min + 7s + 123456us;
    std::string unicode = "héllo wörld ✓ 日本語 🐘";
    std::optional<std::int32_t> none;
    Result r = co_await conn.query(
        "SELECT $1::int8 AS big, $2 AS small, $3 AS d, $4 AS b, $5 AS t, $6 AS blob, "
        "$7 AS ts, $8 AS nothing, $9::int2 AS tiny, $10::float4 AS f",
        std::int64_t{-9007199254740993}, 42, 2.5, true, unicode, blob, ts, none, std::int16_t{-7}, 1.5f);
    EXPECT_EQ(r.size(), 1u);
    Row row = r[0];
    EXPECT_EQ(row.get<std::int64_t>("big"), -9007199254740993);
    EXPECT_EQ(row.get<int>("small"), 42);
    EXPECT_EQ(row.get<double>("d"), 2.5);
    EXPECT_TRUE(row.get<bool>("b"));
    EXPECT_EQ(row.get<std::string>("t"), unicode);
    EXPECT_EQ(row.get<std::string_view>(4), unicode);
    EXPECT_EQ(row.get<std::vector<std::byte>>("blob"), blob);
    EXPECT_EQ(row.get<Timestamp>("ts"), ts);
    EXPECT_EQ(row.get<std::optional<int>>("nothing"), std::nullopt);
    EXPECT_TRUE(row.is_null(7));
    EXPECT_THROW(row.get<int>("nothing"), DecodeError);
    EXPECT_EQ(row.get<std::int16_t>("tiny"), -7);
    EXPECT_EQ(row.get<float>("f"), 1.5f);
    EXPECT_THROW(row.get<std::int8_t>("big"), DecodeError);  // out of range
    EXPECT_THROW(row.get<int>("t"), DecodeError);            // wrong type
    EXPECT_THROW(row.get<int>("no_such_column"), DecodeError);

    // Server-side types read back through their binary form.
    Result s = co_await conn.query(
        "SELECT 12345.678::numeric AS n, -0.5::numeric AS neg, '2024-01-01 00:00:00+00'::timestamptz AS ts, "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '{\"k\": 1}'::jsonb AS j, 'x'::varchar AS v, "
        "NULL::text AS n2, 7::oid AS o");
    EXPECT_EQ(s[0].get<std::string>("n"), "12345.678");
    EXPECT_DOUBLE_EQ(s[0].get<double>("n"), 12345.678);
    EXPECT_EQ(s[0].get<std::string>("neg"), "-0.5");
    EXPECT_EQ(s[0].get<std::string>("ts"), "2024-01-01 00:00:00+00");
    EXPECT_EQ(s[0].get<std::string>("u"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    EXPECT_EQ(s[0].get<std::string>("j"), "{\"k\": 1}");
    EXPECT_EQ(s[0].get<std::string>("v"), "x");
    EXPECT_EQ(s[0].get<std::optional<std::string>>("n2"), std::nullopt);
    EXPECT_EQ(s[0].get<std::int64_t>("o"), 7);

    // Edges: an empty value is not NULL, indexes out of range, timestamps Timestamp cannot hold.
    Result e = co_await conn.query(
        "SELECT ''::text AS empty, NULL::int4 AS n, 'infinity'::timestamptz AS inf, "
        "'-infinity'::timestamptz AS ninf, '3000-01-01 00:00:00+00'::timestamptz AS far");
    EXPECT_EQ(e[0].get<std::string_view>("empty"), "");
    EXPECT_EQ(e[0].get<std::optional<std::string>>("empty"), std::optional<std::string>(""));
    EXPECT_FALSE(e[0].is_null(0));
    EXPECT_EQ(e[0].get<std::optional<std::int64_t>>("n"), std::nullopt);
    EXPECT_THROW(e[0].get<std::string>(1), DecodeError);  // NULL into a non-optional
    EXPECT_THROW(e[0].get<int>(5), DecodeError);
    EXPECT_THROW(e[0].get<int>(-1), DecodeError);
    EXPECT_THROW(e[0].is_null(5), DecodeError);
    EXPECT_THROW(e[1], DecodeError);
    EXPECT_EQ(e.column_name(5), "");
    EXPECT_EQ(e.column_type(5), 0u);
    EXPECT_EQ(e[0].size(), 5);
    EXPECT_EQ(e[0].get<std::string>("inf"), "infinity");
    EXPECT_EQ(e[0].get<std::string>("ninf"), "-infinity");
    EXPECT_THROW(e[0].get<Timestamp>("inf"), DecodeError);
    EXPECT_THROW(e[0].get<Timestamp>("ninf"), DecodeError);
    EXPECT_THROW(e[0].get<Timestamp>("far"), DecodeError);  // past system_clock's year 2262
    EXPECT_EQ(e[0].get<std::string>("far"), "3000-01-01 00:00:00+00");
  }());
}

TEST(PgConnection, RowsAndAffectedCounts) {
  run([]() -> Coro<void> {
    auto conn = co_await Connection::connect(pgtest::dsn());
    co_await conn.query("CREATE TEMP TABLE items (id int8 PRIMARY KEY, name text, price float8)");
    for (int i = 1; i <= 5; ++i) {
      std::optional<std::string> name;
      if (i != 3) name = "item " + std::to_string(i);
      Result ins = co_await conn.query("INSERT INTO items VALUES ($1, $2, $3)", i, name, i * 1.25);
      EXPECT_EQ(ins.affected_rows(), 1u);
    }
    Result upd = co_await conn.query("UPDATE items SET price = price * 2 WHERE id > $1", 2);
    EXPECT_EQ(upd.affected_rows(), 3u);
    Result r = co_await conn.query("SELECT id, name, price FROM items ORDER BY id");
    std::int64_t expect = 1;
    for (Row row : r) {
      EXPECT_EQ(row.get<std::int64_t>("id"), expect);
      EXPECT_EQ(row.get<std::optional<std::string>>("name").has_value(), expect != 3);
      ++expect;
    }
    EXPECT_EQ(expect, 6);
    EXPECT_EQ((co_await conn.query("SELECT count(*) FROM items WHERE name IS NULL")).scalar<int>(), 1);
  }());
}

TEST(PgConnection, ErrorsCarrySqlstateAndLeaveTheConnectionUsable) {
  run([]() -> Coro<void> {
    auto conn = co_await Connection::connect(pgtest::dsn());
    try {
      co_await conn.query("SELECT * FROM no_such_table");
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.sqlstate(), "42P01");
      EXPECT_EQ(e.severity(), "ERROR");
      EXPECT_NE(e.message().find("no_such_table"), std::string::npos);
      EXPECT_EQ(e.position(), 15);
    }
    co_await conn.query("CREATE TEMP TABLE u (k int PRIMARY KEY)");
    co_await conn.query("INSERT INTO u VALUES ($1)", 1);
    try {
      co_await conn.query("INSERT INTO u VALUES ($1)", 1);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.sqlstate(), "23505");
      EXPECT_NE(e.detail().find("(k)=(1)"), std::string::npos) << e.detail();
    }
    try {  // a statement that does not parse: its Prepare fails; the next use prepares again
      co_await conn.query("SELEC 1");
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.sqlstate(), "42601");
    }
    EXPECT_THROW(co_await conn.query("SELEC 1"), Error);
    EXPECT_EQ((co_await conn.query("SELECT 7")).scalar<int>(), 7);
    EXPECT_TRUE(conn.is_idle());
  }());
}

// Over the Unix socket, and over TCP, where requests that pipeline within one loop pass are sent corked.
TEST(PgConnection, HundredTasksPipelineOnOneConnectionAndOneFailureStaysTheirs) {
  run([]() -> Coro<void> {
    std::vector<std::string> dsns{pgtest::dsn(), pgtest::tcp_dsn() + " sslmode=disable"};
    for (const std::string& dsn : dsns) {
      auto conn = co_await Connection::connect(dsn);
      std::size_t most_in_flight = 0;
      int ok = 0, failed = 0;
      std::vector<Task<void>> tasks;
      for (int round = 0; round < 3; ++round) {  // a second and third burst reuse the prepared statements
        for (int i = 0; i < 100; ++i) {
          tasks.push_back(create_task([&, i]() -> Coro<void> {
            most_in_flight = std::max(most_in_flight, conn.in_flight());
            try {
              int v = (co_await conn.query(i == 50 ? "SELECT $1::int / 0" : "SELECT $1::int * 2", i)).scalar<int>();
              EXPECT_EQ(v, i * 2);
              ++ok;
            } catch (const Error& e) {
              EXPECT_EQ(i, 50);
              EXPECT_EQ(e.sqlstate(), "22012");  // division_by_zero
              ++failed;
            }
          }));
        }
        for (auto& t : tasks) co_await t;
        tasks.clear();
      }
      EXPECT_EQ(ok, 3 * 99);
      EXPECT_EQ(failed, 3);
      EXPECT_EQ(most_in_flight, 99u);  // every task's query was sent before any result came back
      EXPECT_TRUE(conn.is_idle());
    }
  }());
}

TEST(PgConnection, StatementCacheIsBoundedAndCanBeOff) {
  run([]() -> Coro<void> {
    ConnectOptions small;
    small.statement_cache = 4;
    auto conn = co_await Connection::connect(pgtest::dsn(), small);
    for (int round = 0; round < 2; ++round)
      for (int i = 0; i < 10; ++i)
        EXPECT_EQ((co_await conn.query("SELECT $1::int + " + std::to_string(i), 1)).scalar<int>(), 1 + i);
    EXPECT_EQ(conn.cached_statements(), 4u);
    // The evicted ones were deallocated on the server too (this query evicts one more and is the fourth).
    EXPECT_EQ((co_await conn.query("SELECT count(*)::int FROM pg_prepared_statements")).scalar<int>(), 4);

    ConnectOptions unnamed;
    unnamed.statement_cache = 0;  // pgbouncer's transaction mode
    auto plain = co_await Connection::connect(pgtest::dsn(), unnamed);
    for (int i = 0; i < 3; ++i) EXPECT_EQ((co_await plain.query("SELECT $1::text", "x")).scalar<std::string>(), "x");
    EXPECT_EQ((co_await plain.query("SELECT count(*)::int FROM pg_prepared_statements")).scalar<int>(), 0);
    EXPECT_EQ(plain.cached_statements(), 0u);
  }());
}

TEST(PgConnection, UriAndHostNameGoThroughTheResolver) {
  run([]() -> Coro<void> {
    auto conn = co_await Connection::connect("postgresql://postgres@localhost:" + pgtest::port() +
                                             "/postgres?application_name=tulipa_test");
    EXPECT_EQ((co_await conn.query("SELECT current_setting('application_name')")).scalar<std::string>(), "tulipa_test");
    EXPECT_GT(conn.backend_pid(), 0);
    EXPECT_FALSE(conn.parameter("server_version").empty());
  }());
}

TEST(PgConnection, ClearErrorsForAClosedPortAWrongPasswordAndABadString) {
  run([]() -> Coro<void> {
    try {
      co_await Connection::connect("host=127.0.0.1 port=" + std::to_string(closed_port()) + " user=postgres");
      ADD_FAILURE() << "connected";
    } catch (const ConnectionError& e) {
      EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos) << e.what();
    }
    try {
      co_await Connection::connect("host=127.0.0.1 port=" + pgtest::port() +
                                   " user=tulipa_pw password=wrong dbname=postgres");
      ADD_FAILURE() << "connected";
    } catch (const ConnectionError& e) {
      EXPECT_NE(std::string(e.what()).find("password authentication failed"), std::string::npos) << e.what();
    }
    auto ok = co_await Connection::connect("host=127.0.0.1 port=" + pgtest::port() +
                                           " user=tulipa_pw password=secret dbname=postgres");
    EXPECT_EQ((co_await ok.query("SELECT current_user::text")).scalar<std::string>(), "tulipa_pw");
    EXPECT_THROW(co_await Connection::connect("host=127.0.0.1 nonsense_key=1"), ConnectionError);
  }());
}

TEST(PgConnection, ConnectTimeoutFiresAgainstAServerThatNeverAnswers) {
  SilentServer silent;
  run([&]() -> Coro<void> {
    ConnectOptions o;
    o.connect_timeout = 200ms;
    try {
      co_await Connection::connect("host=127.0.0.1 port=" + std::to_string(silent.port) + " user=postgres", o);
      ADD_FAILURE() << "connected";
    } catch (const ConnectionError& e) {
      EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
    }
  }());
}

TEST(PgConnection, NoticesGoToTheHandler) {
  run([]() -> Coro<void> {
    std::vector<std::string> seen;
    ConnectOptions o;
    o.on_notice = [&](const Notice& n) { seen.push_back(n.severity + " " + n.message); };
    auto conn = co_await Connection::connect(pgtest::dsn(), o);
    co_await conn.query("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$");
    EXPECT_EQ(seen, std::vector<std::string>{"NOTICE hello 42"});
  }());
}

TEST(PgConnection, ClosingFailsWhatIsInFlight) {
  run([]() -> Coro<void> {
    auto conn = co_await Connection::connect(pgtest::dsn());
    auto t = create_task([&]() -> Coro<void> { co_await conn.query("SELECT pg_sleep(10)"); });
    co_await sleep(0ms);  // let it send
    conn.close();
    EXPECT_THROW(co_await t, ConnectionError);
  }());
}

TEST(PgConnection, TlsAsLibpqDoesIt) {
  run([]() -> Coro<void> {
    std::string dir = pgtest::env().at("PG_DIR");
    // verify-full: the chain (our throwaway CA is the certificate itself) and the host name "localhost", which
    // goes through tulipa's resolver to hostaddr while libpq checks the certificate against the name.
    auto conn = co_await Connection::connect("host=localhost port=" + pgtest::port() +
                                             " user=postgres dbname=postgres sslmode=verify-full sslrootcert=" + dir +
                                             "/server.crt");
    EXPECT_TRUE((co_await conn.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar<bool>());
    // Pipelined results larger than a TLS record come back whole.
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 20; ++i) {
      tasks.push_back(create_task([&, i]() -> Coro<void> {
        Result r = co_await conn.query("SELECT repeat('x', $1::int)", 20000 + i);
        EXPECT_EQ(r.scalar<std::string_view>().size(), static_cast<std::size_t>(20000 + i));
      }));
    }
    for (auto& t : tasks) co_await t;
    // A certificate that does not match fails clearly.
    try {
      co_await Connection::connect("host=127.0.0.1 port=" + pgtest::port() +
                                   " user=postgres sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt");
      ADD_FAILURE() << "connected";
    } catch (const ConnectionError& e) {
      EXPECT_NE(std::string(e.what()).find("certificate"), std::string::npos) << e.what();
    }
  }());
}
