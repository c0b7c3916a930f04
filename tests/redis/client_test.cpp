// tulipa::redis's shared connection against a real redis-server: typed replies of every RESP3 type (and RESP2),
// errors, the typed helpers, 10,000 concurrent commands from 1,000 tasks, callers cancelled mid-pipeline, AUTH
// (ACL users) and its failure, refused connections, servers that stop answering (timeouts), a server killed and
// restarted under the client, TLS (rediss://).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "redis/redis_test_util.hpp"
#include "support/test_certs.hpp"
#include "tulipa/combinators.hpp"
#include "tulipa/net.hpp"
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

TEST(RedisClient, EveryResp3Type) {
  run_test([]() -> Coro<void> {
    redis::Client c(get_running_loop(), fixture_options());
    auto p = [&](const char* t) { return c.command("DEBUG", "PROTOCOL", t); };
    redis::Reply r = co_await p("string");
    EXPECT_EQ(r.type(), redis::Type::bulk_string);
    EXPECT_EQ(r.str(), "Hello World");
    r = co_await p("integer");
    EXPECT_EQ(r.integer(), 12345);
    r = co_await p("double");
    EXPECT_EQ(r.type(), redis::Type::double_);
    EXPECT_DOUBLE_EQ(r.number(), 3.141);
    r = co_await p("bignum");
    EXPECT_EQ(r.type(), redis::Type::big_number);
    EXPECT_EQ(r.str(), "1234567999999999999999999999999999999");
    r = co_await p("null");
    EXPECT_TRUE(r.is_null());
    r = co_await p("array");
    EXPECT_EQ(r.type(), redis::Type::array);
    EXPECT_EQ(r.size(), 3u);
    r = co_await p("set");
    EXPECT_EQ(r.type(), redis::Type::set);
    EXPECT_EQ(r.size(), 3u);
    r = co_await p("map");
    EXPECT_EQ(r.type(), redis::Type::map);
    EXPECT_EQ(r.size(), 6u);
    EXPECT_TRUE(r.elements()[3].boolean());
    r = co_await p("true");
    EXPECT_TRUE(r.boolean());
    r = co_await p("false");
    EXPECT_FALSE(r.boolean());
    r = co_await p("verbatim");
    EXPECT_EQ(r.type(), redis::Type::verbatim);
    EXPECT_EQ(r.format(), "txt");
    EXPECT_EQ(r.str(), "This is a verbatim\nstring");
    r = co_await p("attrib");
    EXPECT_EQ(r.str(), "Some real reply following the attribute");
    EXPECT_NE(r.attributes(), nullptr);
    EXPECT_NE(r.attributes()->find("key-popularity"), nullptr);
    // A push frame comes before the real reply: it must not take that reply's place.
    r = co_await p("push");
    EXPECT_EQ(r.str(), "Some real reply following the push reply");
    r = co_await c.command("ECHO", "after the push");
    std::vector<redis::Arg> args{redis::Arg("ECHO"), redis::Arg("from a list")};
    EXPECT_EQ((co_await c.command(args)).str(), "from a list");
    EXPECT_EQ(r.str(), "after the push");
    // The error type: a ServerError with the server's message.
    try {
      co_await c.command("NO-SUCH-COMMAND", "x");
      ADD_FAILURE() << "no error";
    } catch (const redis::ServerError& e) {
      EXPECT_EQ(e.code(), "ERR");
      EXPECT_NE(std::string(e.what()).find("unknown command"), std::string::npos) << e.what();
    }
    // Errors nested in an aggregate are values, not exceptions.
    r = co_await c.command("EVAL", "return {1, redis.error_reply('NESTED oops')}", 0);
    EXPECT_EQ(r.size(), 2u);
    EXPECT_TRUE(r[1].is_error());
    EXPECT_EQ(r[1].str(), "NESTED oops");
  });
}

TEST(RedisClient, Resp2Protocol) {
  run_test([]() -> Coro<void> {
    auto o = fixture_options();
    o.protocol = 2;
    o.client_name = "tulipa-resp2";
    redis::Client c(get_running_loop(), o);
    co_await c.hset(key("h"), "a", "1", "b", "2");
    redis::Reply r = co_await c.command("HGETALL", key("h"));
    EXPECT_EQ(r.type(), redis::Type::array);  // a map in RESP3
    EXPECT_EQ(r.size(), 4u);
    r = co_await c.command("CLIENT", "GETNAME");
    EXPECT_EQ(r.str(), "tulipa-resp2");
    EXPECT_TRUE((co_await c.command("GET", key("missing"))).is_null());
    co_await c.del(key("h"));
  });
}

TEST(RedisClient, TypedHelpers) {
  run_test([]() -> Coro<void> {
    auto o = fixture_options();
    o.db = 2;
    o.client_name = "tulipa-typed";
    redis::Client c(get_running_loop(), o);
    std::string k = key("k");
    EXPECT_TRUE(co_await c.set(k, "v1"));
    EXPECT_EQ(co_await c.get(k), std::optional<std::string>("v1"));
    EXPECT_FALSE(co_await c.set(k, "v2", {.condition = redis::SetOptions::Condition::if_absent}));
    EXPECT_TRUE(co_await c.set(k, "v3", {.condition = redis::SetOptions::Condition::if_present, .expire = 60s}));
    std::string into;
    EXPECT_TRUE(co_await c.get(k, into));
    EXPECT_EQ(into, "v3");
    EXPECT_GT((co_await c.command("PTTL", k)).integer(), 0);
    EXPECT_EQ((co_await c.command("CLIENT", "GETNAME")).str(), "tulipa-typed");
    // SELECT 2 happened: the key is not in db 0.
    redis::Client db0(get_running_loop(), fixture_options());
    EXPECT_EQ(co_await db0.get(k), std::nullopt);
    EXPECT_FALSE(co_await c.get(key("none"), into));
    EXPECT_EQ(co_await c.incr(key("n")), 1);
    EXPECT_EQ(co_await c.incrby(key("n"), 41), 42);
    EXPECT_TRUE(co_await c.expire(key("n"), 100s));
    EXPECT_FALSE(co_await c.expire(key("none"), 100s));
    EXPECT_EQ(co_await c.hset(key("h"), "f", "x"), 1);
    EXPECT_EQ(co_await c.hget(key("h"), "f"), std::optional<std::string>("x"));
    EXPECT_EQ(co_await c.hget(key("h"), "g"), std::nullopt);
    EXPECT_EQ(co_await c.lpush(key("l"), "a", "b", "c"), 3);
    EXPECT_EQ(co_await c.rpop(key("l")), std::optional<std::string>("a"));
    std::string id1 = co_await c.xadd(key("s"), {}, "user", "ann", "text", "hi");
    std::string id2 = co_await c.xadd(key("s"), {.max_len = 1000}, "user", "bob", "text", "yo");
    auto entries = co_await c.xrange(key("s"));
    EXPECT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].id, id1);
    EXPECT_EQ(entries[1].fields.at(0), (std::pair<std::string, std::string>("user", "bob")));
    auto read = co_await c.xread(key("s"), id1);
    EXPECT_EQ(read.size(), 1u);
    EXPECT_EQ(read[0].stream, key("s"));
    EXPECT_EQ(read[0].entries.size(), 1u);
    EXPECT_EQ(read[0].entries[0].id, id2);
    EXPECT_TRUE((co_await c.xread(key("s"), id2)).empty());
    EXPECT_EQ(co_await c.publish(key("nobody"), "x"), 0);
    EXPECT_EQ(co_await c.del(k, key("n"), key("h"), key("l"), key("s"), key("none")), 5);
    // A typed helper on a reply of another type: ReplyTypeError, and the connection goes on.
    co_await c.hset(key("h"), "f", "x");
    try {
      (void)co_await c.command_as<long long>("HGET", key("h"), "f");
      ADD_FAILURE();
    } catch (const redis::ReplyTypeError&) {
    }
    try {
      (void)co_await c.get(key("h"));
      ADD_FAILURE();
    } catch (const redis::ServerError& e) {
      EXPECT_EQ(e.code(), "WRONGTYPE");
    }
    EXPECT_EQ(co_await c.del(key("h")), 1);
    EXPECT_EQ(c.connections_opened(), 1u);
  });
}

// 10,000 commands from 1,000 tasks at once on one connection: each gets its own reply.
TEST(RedisClient, TenThousandConcurrentCommandsMatched) {
  run_test([]() -> Coro<void> {
    redis::Client c(get_running_loop(), fixture_options());
    std::string counter = key("counter");
    co_await c.del(counter);
    int wrong = 0;
    std::vector<Task<void>> tasks;
    for (int t = 0; t < 1000; ++t) {
      tasks.push_back(create_task([](redis::Client& c, int t, int& wrong, std::string counter) -> Coro<void> {
        for (int i = 0; i < 10; ++i) {
          std::string want = std::to_string(t) + "/" + std::to_string(i);
          if (i % 2) {
            redis::Reply r = co_await c.command("ECHO", want);
            if (r.str() != want) ++wrong;
          } else {
            long long v = co_await c.incrby(counter, 1);
            if (v <= 0) ++wrong;
          }
        }
      }(c, t, wrong, counter)));
    }
    co_await gather(std::move(tasks));
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(co_await c.get(counter), std::optional<std::string>("5000"));
    EXPECT_EQ(c.connections_opened(), 1u);
    co_await c.del(counter);
  });
}

// Callers cancelled while their commands are in flight: every reply still goes to its own caller.
TEST(RedisClient, CancelledCallersNeverShiftReplies) {
  run_test([]() -> Coro<void> {
    redis::Client c(get_running_loop(), fixture_options());
    co_await c.ping();
    std::vector<Task<std::string>> tasks;
    for (int i = 0; i < 200; ++i)
      tasks.push_back(create_task([](redis::Client& c, int i) -> Coro<std::string> {
        // A slow one now and then keeps the pipeline full while the others are cancelled.
        if (i % 50 == 0) co_await c.command("DEBUG", "SLEEP", "0.01");
        redis::Reply r = co_await c.command("ECHO", "reply-" + std::to_string(i));
        co_return std::string(r.str());
      }(c, i)));
    co_await sleep(0s);  // the commands are queued and written
    co_await sleep(0s);
    for (int i = 0; i < 200; i += 3) tasks[i].cancel();
    int cancelled = 0;
    for (int i = 0; i < 200; ++i) {
      try {
        EXPECT_EQ(co_await tasks[i], "reply-" + std::to_string(i));
      } catch (const CancelledError&) {
        ++cancelled;
        EXPECT_EQ(i % 3, 0);
      }
    }
    EXPECT_GT(cancelled, 0);
    // And after them, the next caller gets its own reply too.
    EXPECT_EQ((co_await c.command("ECHO", "last")).str(), "last");
    EXPECT_EQ(c.connections_opened(), 1u);
  });
}

TEST(RedisClient, AuthWithAclUserAndItsFailure) {
  run_test([]() -> Coro<void> {
    redis::Client admin(get_running_loop(), fixture_options());
    std::string user = key("user");
    co_await admin.command("ACL", "SETUSER", user, "on", ">s3cret", "~*", "&*", "+@all");
    auto o = fixture_options();
    o.username = user;
    o.password = "s3cret";
    {
      redis::Client c(get_running_loop(), o);
      EXPECT_EQ((co_await c.command("ACL", "WHOAMI")).str(), user);
      o.protocol = 2;
      redis::Client c2(get_running_loop(), o);
      EXPECT_EQ((co_await c2.command("ACL", "WHOAMI")).str(), user);
    }
    o.protocol = 3;
    o.password = "wrong";
    redis::Client bad(get_running_loop(), o);
    // The commands pipelined behind the failed HELLO fail with the server's error.
    auto t1 = create_task([](redis::Client& c) -> Coro<void> { co_await c.ping(); }(bad));
    try {
      co_await bad.connect();
      ADD_FAILURE() << "AUTH passed";
    } catch (const redis::ServerError& e) {
      EXPECT_EQ(e.code(), "WRONGPASS") << e.what();
    }
    EXPECT_THROW(co_await t1, redis::ServerError);
    co_await admin.command("ACL", "DELUSER", user);
  });
}

TEST(RedisClient, RefusedConnection) {
  run_test([]() -> Coro<void> {
    auto o = fixture_options();
    o.port = test::free_loopback_port();
    redis::Client c(get_running_loop(), o);
    try {
      co_await c.ping();
      ADD_FAILURE();
    } catch (const redis::ConnectionError& e) {
      EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
    }
  });
}

// A peer that accepts and never answers: connect timeout (HELLO unanswered) and command timeout.
class Silent final : public Protocol {};

TEST(RedisClient, ServerThatNeverAnswers) {
  run_test([]() -> Coro<void> {
    EventLoop& loop = get_running_loop();
    Server server = create_server(loop, [] { return std::make_unique<Silent>(); }, "127.0.0.1", 0);
    redis::Options o;
    o.port = server.sockets().at(0).port();
    o.connect_timeout = 100ms;
    redis::Client c(loop, o);
    EXPECT_THROW(co_await c.ping(), redis::TimeoutError);
    // No handshake at all (protocol 2, nothing to say): the command timeout.
    o.protocol = 2;
    o.command_timeout = 100ms;
    redis::Client c2(loop, o);
    try {
      co_await c2.get("k");
      ADD_FAILURE();
    } catch (const redis::TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("no reply"), std::string::npos) << e.what();
    }
    server.close();
  });
}

// A peer that answers each read with a fixed script: bytes that are not RESP, or a reply nobody asked for, leave
// the stream in an unknown state: the connection is closed, what is in flight fails, the next command reconnects.
class Scripted final : public Protocol {
 public:
  explicit Scripted(std::string answer) : answer_(std::move(answer)) {}
  void connection_made(Transport& t) override { t_ = &t; }
  void data_received(std::span<const std::byte>) override { t_->write(answer_); }

 private:
  std::string answer_;
  Transport* t_ = nullptr;
};

TEST(RedisClient, UnknownStreamStateClosesTheConnection) {
  run_test([]() -> Coro<void> {
    EventLoop& loop = get_running_loop();
    Server server =
        create_server(loop, [] { return std::make_unique<Scripted>("+OK\r\n?garbage\r\n"); }, "127.0.0.1", 0);
    redis::Options o;
    o.port = server.sockets().at(0).port();
    o.protocol = 2;  // no handshake: the script answers the first command
    redis::Client c(loop, o);
    // Two commands in one write: the first gets its reply, the second meets the garbage.
    auto first = create_task(
        [](redis::Client& c) -> Coro<std::string> { co_return std::string((co_await c.command("PING")).str()); }(c));
    auto second = create_task([](redis::Client& c) -> Coro<void> { co_await c.command("GET", "x"); }(c));
    EXPECT_EQ(co_await first, "OK");
    try {
      co_await second;
      ADD_FAILURE();
    } catch (const redis::ProtocolError& e) {
      EXPECT_NE(std::string(e.what()).find("malformed"), std::string::npos) << e.what();
    }
    // The connection was closed: the next command opens another.
    EXPECT_EQ((co_await c.command("PING")).str(), "OK");
    EXPECT_EQ(c.connections_opened(), 2u);
    server.close();
  });
}

// A real server stopped (SIGSTOP) under the client: commands time out, the connection is closed; once it runs
// again a new connection serves commands.
TEST(RedisClient, StoppedServerTimesOutThenRecovers) {
  test::PrivateRedis server;
  run_test([&]() -> Coro<void> {
    redis::Options o;
    o.port = server.port();
    o.command_timeout = 150ms;
    redis::Client c(get_running_loop(), o);
    EXPECT_TRUE(co_await c.set("k", "v"));
    server.pause();
    std::vector<Task<void>> inflight;
    for (int i = 0; i < 5; ++i)
      inflight.push_back(create_task([](redis::Client& c) -> Coro<void> { (void)co_await c.get("k"); }(c)));
    for (auto& t : inflight) EXPECT_THROW(co_await t, redis::TimeoutError);
    server.resume();
    EXPECT_EQ(co_await c.get("k"), std::optional<std::string>("v"));
    EXPECT_EQ(c.connections_opened(), 2u);
  });
}

// The server is killed with commands in flight (they fail with a clear error) and restarted: the next command
// reconnects.
TEST(RedisClient, ServerKilledAndRestarted) {
  test::PrivateRedis server;
  run_test([&]() -> Coro<void> {
    redis::Options o;
    o.port = server.port();
    redis::Client c(get_running_loop(), o);
    EXPECT_TRUE(co_await c.set("k", "v"));
    auto slow = create_task([](redis::Client& c) -> Coro<void> { co_await c.command("DEBUG", "SLEEP", "5"); }(c));
    co_await sleep(0s);
    co_await sleep(0s);
    server.kill();
    try {
      co_await slow;
      ADD_FAILURE();
    } catch (const redis::ConnectionError& e) {
      EXPECT_NE(std::string(e.what()).find("lost"), std::string::npos) << e.what();
    }
    EXPECT_THROW(co_await c.ping(), redis::ConnectionError);  // nothing listens now
    server.start();
    EXPECT_EQ((co_await c.ping()).str(), "PONG");
    EXPECT_EQ(co_await c.get("k"), std::nullopt);  // no persistence: a fresh server
  });
}

TEST(RedisClient, Tls) {
  const auto& pki = test::test_pki();
  test::PrivateRedis server({"--tls-cert-file", pki.server.cert, "--tls-key-file", pki.server.key, "--tls-ca-cert-file",
                             pki.ca_cert, "--tls-auth-clients", "no"},
                            true);
  run_test([&]() -> Coro<void> {
    redis::Options o = redis::Options::from_url("rediss://localhost:" + std::to_string(server.port()));
    o.host = "127.0.0.1";
    o.server_hostname = "localhost";
    o.ssl = test::trusting_client();
    redis::Client c(get_running_loop(), o);
    EXPECT_TRUE(co_await c.set("tls", "yes"));
    EXPECT_EQ(co_await c.get("tls"), std::optional<std::string>("yes"));
    // Without trusting the test CA: the certificate is refused.
    o.ssl.reset();
    redis::Client untrusting(get_running_loop(), o);
    EXPECT_THROW(co_await untrusting.ping(), redis::ConnectionError);
  });
}

}  // namespace
