// What the Redis bus (apps/chat/bus/redis_bus.hpp) puts on the wire, and what it refuses to take from it: a
// message that another process (or a stranger with access to Redis) publishes wrongly is ignored, never delivered.
#include <gtest/gtest.h>

#include "bus/redis_bus.hpp"

using chat::Message;
using chat::RedisBus;

TEST(RedisBusCodec, AMessageGoesThereAndBack) {
  Message m{.id = 42,
            .seq = 7,
            .time_ms = 1764755590123,
            .room = "lobby",
            .nick = "alice",
            .text = "hello  world: <b>x</b> \\x1b[31m",
            .action = true};
  std::string wire = RedisBus::encode(m);
  EXPECT_EQ(wire, "42 7 1764755590123 1 lobby alice\nhello  world: <b>x</b> \\x1b[31m");
  std::optional<Message> back = RedisBus::decode(wire);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, 42u);
  EXPECT_EQ(back->seq, 7u);
  EXPECT_EQ(back->time_ms, 1764755590123);
  EXPECT_EQ(back->room, "lobby");
  EXPECT_EQ(back->nick, "alice");
  EXPECT_EQ(back->text, m.text);
  EXPECT_TRUE(back->action);
  m.text.clear();
  m.action = false;
  ASSERT_TRUE(RedisBus::decode(RedisBus::encode(m)));
  EXPECT_EQ(RedisBus::decode(RedisBus::encode(m))->text, "");
}

TEST(RedisBusCodec, APrivateMessageGoesThereAndBackOnItsOwnChannel) {
  Message m{.id = 43, .time_ms = 1764755590124, .nick = "alice", .text = "psst", .to = "Bob"};
  std::string wire = RedisBus::encode(m);
  EXPECT_EQ(wire, "43 0 1764755590124 0 Bob alice\npsst");
  std::optional<Message> back = RedisBus::decode(wire, true);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, 43u);
  EXPECT_EQ(back->seq, 0u);
  EXPECT_EQ(back->to, "Bob");
  EXPECT_EQ(back->room, "");
  EXPECT_EQ(back->nick, "alice");
  EXPECT_EQ(back->text, "psst");
  // Each kind only on its own channel: a room message is not a private one, nor the reverse.
  EXPECT_FALSE(RedisBus::decode(wire));
  EXPECT_FALSE(RedisBus::decode("42 7 1 0 lobby alice\nt", true));
  EXPECT_FALSE(RedisBus::decode("0 0 1 0 bob alice\nt", true));
}

TEST(RedisBusCodec, AnythingElseIsRefused) {
  for (std::string_view bad : {"", "42", "42 7 1 0 lobby", "42 7 1 0 lobby alice", "x 7 1 0 lobby alice\nt",
                               "42 7 1 2 lobby alice\nt", "0 7 1 0 lobby alice\nt", "42 0 1 0 lobby alice\nt",
                               "42 7 1 0  alice\nt", "42 7 1 0 lobby \nt", "42 7 1 0 lobby al ice\nt",
                               "42 7 1 0 lobby alice\nt\nu", "-1 7 1 0 lobby alice\nt", "42 7 1 0 lobby\nalice t"}) {
    EXPECT_FALSE(RedisBus::decode(bad)) << bad;
  }
}
