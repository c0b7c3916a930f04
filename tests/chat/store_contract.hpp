// What every chat store does (apps/chat/core/store.hpp), checked against a real one: the SQLite store here
// (chat_store_test), the PostgreSQL store against the PostgreSQL 15 fixture (chat_pg_store_test).
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/store.hpp"
#include "support/net_util.hpp"
#include "tulipa/task.hpp"

namespace chat::test {

inline Message room_message(std::string room, std::string nick, std::string text) {
  return Message{.time_ms = 1764755590123, .room = std::move(room), .nick = std::move(nick), .text = std::move(text)};
}

// Appends and waits (the loop runs meanwhile); rethrows the store's error.
inline std::vector<Message> append_all(tulipa::EventLoop& loop, Store& store, std::vector<Message> msgs) {
  std::vector<std::optional<Message>> out(msgs.size());
  std::exception_ptr error;
  std::size_t done = 0;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    store.append(std::move(msgs[i]), [&, i](Message stored, std::exception_ptr e) {
      if (e) error = e;
      out[i] = std::move(stored);
      ++done;
    });
  }
  EXPECT_TRUE(tulipa::test::run_until(loop, [&] { return done == out.size(); }));
  if (error) std::rethrow_exception(error);
  std::vector<Message> stored;
  for (auto& m : out) stored.push_back(std::move(*m));
  return stored;
}

inline std::vector<Message> after(tulipa::EventLoop& loop, Store& store, const std::string& room, std::uint64_t id,
                                  std::size_t limit) {
  std::optional<std::vector<Message>> got;
  std::exception_ptr error;
  store.messages_after(room, id, limit, [&](std::vector<Message> m, std::exception_ptr e) {
    error = e;
    got = std::move(m);
  });
  EXPECT_TRUE(tulipa::test::run_until(loop, [&] { return got.has_value(); }));
  if (error) std::rethrow_exception(error);
  return *got;
}

inline std::map<std::string, std::vector<Message>> recent(tulipa::EventLoop& loop, Store& store, std::size_t n) {
  tulipa::Task<std::map<std::string, std::vector<Message>>> t = tulipa::create_task(loop, store.load_recent(n));
  EXPECT_TRUE(tulipa::test::run_until(loop, [&] { return t.done(); }));
  return t.take_result();
}

inline void flush(tulipa::EventLoop& loop, Store& store) {
  bool flushed = false;
  store.flush([&] { flushed = true; });
  EXPECT_TRUE(tulipa::test::run_until(loop, [&] { return flushed; }));
}

inline std::vector<std::string> texts(const std::vector<Message>& msgs) {
  std::vector<std::string> out;
  for (const Message& m : msgs) out.push_back(m.text);
  return out;
}

// On an empty store.
inline void check_store_contract(tulipa::EventLoop& loop, Store& store) {
  // A room's messages are numbered 1, 2, 3, ...; ids increase in the order of the appends, across rooms.
  std::vector<Message> first = append_all(
      loop, store,
      {room_message("lobby", "alice", "a"), room_message("dev", "bob", "b"), room_message("lobby", "carol", "c")});
  EXPECT_EQ(first[0].seq, 1u);
  EXPECT_EQ(first[1].seq, 1u);
  EXPECT_EQ(first[2].seq, 2u);
  EXPECT_LT(first[0].id, first[1].id);
  EXPECT_LT(first[1].id, first[2].id);
  EXPECT_EQ(first[2].nick, "carol");
  EXPECT_EQ(first[2].time_ms, 1764755590123);

  // A private message is kept with its recipient, outside every room.
  Message secret{.time_ms = 1764755590999, .nick = "alice", .text = "psst", .to = "bob"};
  std::vector<Message> priv = append_all(loop, store, {secret});
  EXPECT_EQ(priv[0].seq, 0u);
  EXPECT_GT(priv[0].id, first[2].id);
  EXPECT_EQ(priv[0].to, "bob");

  Message action = room_message("lobby", "dave", "waves");
  action.action = true;
  std::vector<Message> more = append_all(loop, store, {action});
  EXPECT_EQ(more[0].seq, 3u);

  // Catch-up: the room's messages after an id, oldest first, bounded.
  std::vector<Message> lobby = after(loop, store, "lobby", 0, 100);
  EXPECT_EQ(texts(lobby), (std::vector<std::string>{"a", "c", "waves"}));
  ASSERT_EQ(lobby.size(), 3u);
  EXPECT_EQ(lobby[1].seq, 2u);
  EXPECT_EQ(lobby[1].id, first[2].id);
  EXPECT_EQ(lobby[1].nick, "carol");
  EXPECT_EQ(lobby[1].room, "lobby");
  EXPECT_EQ(lobby[1].time_ms, 1764755590123);
  EXPECT_TRUE(lobby[2].action);
  EXPECT_FALSE(lobby[1].action);
  EXPECT_EQ(texts(after(loop, store, "lobby", first[0].id, 100)), (std::vector<std::string>{"c", "waves"}));
  EXPECT_EQ(texts(after(loop, store, "lobby", 0, 1)), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(after(loop, store, "lobby", more[0].id, 100).empty());
  EXPECT_TRUE(after(loop, store, "nowhere", 0, 100).empty());

  // At start: each room's last messages, at least its last one.
  auto last = recent(loop, store, 2);
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(texts(last["lobby"]), (std::vector<std::string>{"c", "waves"}));
  EXPECT_EQ(texts(last["dev"]), (std::vector<std::string>{"b"}));
  auto none = recent(loop, store, 0);
  EXPECT_EQ(texts(none["lobby"]), (std::vector<std::string>{"waves"}));
  EXPECT_EQ(none["lobby"][0].seq, 3u);

  // Many at once (one batch or several): every room still counts without a gap.
  std::vector<Message> burst;
  for (int i = 0; i < 200; ++i) burst.push_back(room_message(i % 2 ? "dev" : "lobby", "eve", std::to_string(i)));
  std::vector<Message> stored = append_all(loop, store, burst);
  std::uint64_t lobby_seq = 3, dev_seq = 1;
  for (const Message& m : stored) EXPECT_EQ(m.seq, m.room == "lobby" ? ++lobby_seq : ++dev_seq) << m.text;
  flush(loop, store);
}

}  // namespace chat::test
