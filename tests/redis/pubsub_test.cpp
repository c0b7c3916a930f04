// Pub/sub against a real redis-server: channels, patterns and shard channels as a stream of messages; push frames
// interleaved with command replies on the subscriber's connection; unsubscribing; a server killed and restarted
// (reconnection with backoff, every subscription restored, the gap reported, commands in flight fail clearly).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "redis/redis_test_util.hpp"
#include "tulipa/redis/client.hpp"
#include "tulipa/redis/pubsub.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

using namespace tulipa;
using namespace std::chrono_literals;
using test::fixture_options;
using test::key;
using Kind = redis::Message::Kind;

namespace {

template <class F>
void run_test(F body) {
  tulipa::run(body());
}

TEST(RedisPubSub, ChannelsPatternsAndShards) {
  run_test([]() -> Coro<void> {
    redis::Client c(get_running_loop(), fixture_options());
    redis::Subscriber sub = c.subscriber();
    co_await sub.subscribe(key("news"));
    co_await sub.psubscribe(key("room:*"));
    co_await sub.ssubscribe(key("shard"));
    EXPECT_EQ(co_await c.publish(key("news"), "n1"), 1);
    EXPECT_EQ(co_await c.publish(key("room:7"), "r1"), 1);
    EXPECT_EQ((co_await c.command("SPUBLISH", key("shard"), "s1")).integer(), 1);
    redis::Message m = co_await sub.next();
    EXPECT_EQ(m.kind, Kind::message);
    EXPECT_EQ(m.channel, key("news"));
    EXPECT_EQ(m.payload, "n1");
    m = co_await sub.next();
    EXPECT_EQ(m.kind, Kind::pmessage);
    EXPECT_EQ(m.pattern, key("room:*"));
    EXPECT_EQ(m.channel, key("room:7"));
    EXPECT_EQ(m.payload, "r1");
    m = co_await sub.next();
    EXPECT_EQ(m.kind, Kind::smessage);
    EXPECT_EQ(m.payload, "s1");
    co_await sub.unsubscribe(key("news"));
    EXPECT_EQ(co_await c.publish(key("news"), "lost"), 0);
    co_await sub.punsubscribe();
    co_await sub.sunsubscribe();
    EXPECT_EQ(co_await c.publish(key("room:7"), "lost"), 0);
    EXPECT_EQ(sub.pending(), 0u);
  });
}

// Messages arrive as push frames while commands run on the same connection: no reply is taken by a push, and no
// message is lost or reordered.
TEST(RedisPubSub, PushFramesInterleavedWithReplies) {
  run_test([]() -> Coro<void> {
    redis::Client c(get_running_loop(), fixture_options());
    redis::Subscriber sub = c.subscriber();
    co_await sub.subscribe(key("ch"));
    constexpr int n = 300;
    auto publisher = create_task([](redis::Client& c) -> Coro<void> {
      for (int i = 0; i < n; ++i) co_await c.publish(key("ch"), std::to_string(i));
    }(c));
    int wrong = 0;
    auto commander = create_task([](redis::Subscriber& sub, int& wrong) -> Coro<void> {
      for (int i = 0; i < n; ++i) {
        std::string want = "echo-" + std::to_string(i);
        if ((co_await sub.command("ECHO", want)).str() != want) ++wrong;
      }
    }(sub, wrong));
    for (int i = 0; i < n; ++i) {
      redis::Message m = co_await sub.next();
      EXPECT_EQ(m.payload, std::to_string(i));
    }
    co_await publisher;
    co_await commander;
    EXPECT_EQ(wrong, 0);
  });
}

TEST(RedisPubSub, ReconnectsResubscribesAndReportsTheGap) {
  test::PrivateRedis server;
  run_test([&]() -> Coro<void> {
    redis::Options o;
    o.port = server.port();
    o.reconnect_min = 5ms;
    o.reconnect_max = 50ms;
    redis::Client c(get_running_loop(), o);
    redis::Subscriber sub = c.subscriber();
    co_await sub.subscribe("a", "b");
    co_await sub.psubscribe("p:*");
    co_await c.publish("a", "before");
    EXPECT_EQ((co_await sub.next()).payload, "before");
    // A command in flight on the subscriber's connection when the server dies fails with a clear error.
    auto inflight =
        create_task([](redis::Subscriber& s) -> Coro<void> { co_await s.command("DEBUG", "SLEEP", "5"); }(sub));
    co_await sleep(0s);
    co_await sleep(0s);
    server.kill();
    try {
      co_await inflight;
      ADD_FAILURE();
    } catch (const redis::ConnectionError& e) {
      EXPECT_NE(std::string(e.what()).find("lost"), std::string::npos) << e.what();
    }
    // Down for a few reconnection attempts, then back.
    co_await sleep(30ms);
    server.start();
    redis::Message gap = co_await sub.next();
    EXPECT_EQ(gap.kind, Kind::gap);
    EXPECT_NE(gap.payload.find("lost"), std::string::npos) << gap.payload;
    EXPECT_EQ(sub.reconnects(), 1u);
    // Every subscription is back (the gap comes once they were sent; PUBLISH counts receivers).
    EXPECT_EQ((co_await sub.ping()).str(), "PONG");
    EXPECT_EQ(co_await c.publish("b", "after"), 1);
    EXPECT_EQ(co_await c.publish("p:x", "after-p"), 1);
    redis::Message m = co_await sub.next();
    EXPECT_EQ(m.channel, "b");
    EXPECT_EQ(m.payload, "after");
    m = co_await sub.next();
    EXPECT_EQ(m.kind, Kind::pmessage);
    EXPECT_EQ(m.payload, "after-p");
  });
}

// Beyond subscriber_buffer bytes the subscriber stops reading (the server buffers); nothing is lost or reordered
// when next() catches up and reading resumes.
TEST(RedisPubSub, SlowConsumerPausesReadingLosesNothing) {
  run_test([]() -> Coro<void> {
    redis::Client c(get_running_loop(), fixture_options());
    auto o = fixture_options();
    o.subscriber_buffer = 1024;
    redis::Subscriber sub(get_running_loop(), o);
    co_await sub.subscribe(key("flood"));
    std::string payload(200, 'p');
    constexpr int n = 500;
    for (int i = 0; i < n; ++i) co_await c.publish(key("flood"), payload + std::to_string(i));
    EXPECT_LT(sub.pending(), static_cast<std::size_t>(n));  // reading paused long before all 500 were queued
    for (int i = 0; i < n; ++i) {
      redis::Message m = co_await sub.next();
      EXPECT_EQ(m.payload, payload + std::to_string(i));
    }
    EXPECT_EQ(sub.reconnects(), 0u);
  });
}

TEST(RedisPubSub, ClosingEndsTheStream) {
  run_test([]() -> Coro<void> {
    redis::Client c(get_running_loop(), fixture_options());
    auto sub = std::make_unique<redis::Subscriber>(c.subscriber());
    co_await sub->subscribe(key("x"));
    auto waiter = create_task([](redis::Subscriber& s) -> Coro<void> { (void)co_await s.next(); }(*sub));
    co_await sleep(0s);
    sub->close();
    EXPECT_THROW(co_await waiter, redis::ConnectionError);
    // Destroyed while a task waits: the wait ends with ConnectionError too.
    sub = std::make_unique<redis::Subscriber>(c.subscriber());
    auto waiter2 = create_task([](redis::Subscriber& s) -> Coro<void> { (void)co_await s.next(); }(*sub));
    co_await sleep(0s);
    sub.reset();
    EXPECT_THROW(co_await waiter2, redis::ConnectionError);
  });
}

}  // namespace
