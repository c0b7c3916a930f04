// The SQLite store (apps/chat/store/sqlite_store.hpp) on a real file: the stores' contract (store_contract.hpp),
// ids and seq going on after a restart, and a file from before seq and private messages upgraded when opened.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "store/sqlite_store.hpp"
#include "store_contract.hpp"

using namespace chat;
using namespace chat::test;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/tulipa-chat-store-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// The writer is made before the loop and goes after it (sqlite_store.hpp).
TEST(SqliteStore, KeepsTheStoresContract) {
  TempDir dir;
  SqliteWriter writer((dir.path / "chat.db").string(), 1);
  tulipa::EventLoop loop;
  SqliteStore store(loop, writer);
  check_store_contract(loop, store);
}

// --loops 2: one writer for both loops. Each loop's appends are accepted in order, and each loop is handed the room
// messages the other stored (not the private ones), in commit order, with their ids and seqs.
TEST(SqliteStore, OneWriterHandsEachLoopTheOthersRoomMessagesInCommitOrder) {
  TempDir dir;
  std::vector<Message> others[2];
  SqliteWriter writer((dir.path / "chat.db").string(), 2,
                      [&](std::size_t lane, Message&& m) { others[lane].push_back(std::move(m)); });
  tulipa::EventLoop a, b;
  SqliteStore store_a(a, writer, 0), store_b(b, writer, 1);
  Message secret{.time_ms = 1764755590999, .nick = "alice", .text = "psst", .to = "bob"};
  std::vector<Message> from_a =
      append_all(a, store_a, {room_message("lobby", "alice", "a1"), secret, room_message("dev", "alice", "a2")});
  std::vector<Message> from_b =
      append_all(b, store_b, {room_message("lobby", "bob", "b1"), room_message("dev", "bob", "b2")});
  EXPECT_EQ(from_b[0].seq, 2u);
  EXPECT_EQ(from_b[1].seq, 2u);
  EXPECT_TRUE(tulipa::test::run_until(a, [&] { return others[0].size() == 2; }));
  EXPECT_TRUE(tulipa::test::run_until(b, [&] { return others[1].size() == 2; }));
  EXPECT_EQ(texts(others[1]), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(texts(others[0]), (std::vector<std::string>{"b1", "b2"}));
  EXPECT_EQ(others[1][1].id, from_a[2].id);
  EXPECT_EQ(others[1][1].seq, 1u);
  EXPECT_EQ(others[0][0].id, from_b[0].id);
  EXPECT_EQ(others[0][0].room, "lobby");
  EXPECT_EQ(others[0][0].nick, "bob");
  EXPECT_GE(writer.transactions(), 1u);
  flush(a, store_a);
  flush(b, store_b);
  EXPECT_EQ(texts(after(b, store_b, "lobby", 0, 10)), (std::vector<std::string>{"a1", "b1"}));
}

TEST(SqliteStore, IdsAndSeqGoOnAfterARestart) {
  TempDir dir;
  std::string path = (dir.path / "chat.db").string();
  std::uint64_t last_id = 0;
  {
    SqliteWriter writer(path, 1);
    tulipa::EventLoop loop;
    SqliteStore store(loop, writer);
    last_id = append_all(loop, store, {room_message("lobby", "a", "1"), room_message("lobby", "a", "2")})[1].id;
    flush(loop, store);
  }
  SqliteWriter writer(path, 1);
  tulipa::EventLoop loop;
  SqliteStore store(loop, writer);
  auto again = append_all(loop, store, {room_message("lobby", "a", "3")});
  EXPECT_EQ(again[0].seq, 3u);
  EXPECT_GT(again[0].id, last_id);
  flush(loop, store);
}

TEST(SqliteStore, AFileFromBeforeSeqIsUpgradedWhenOpened) {
  TempDir dir;
  std::string path = (dir.path / "chat.db").string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE messages(id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, room "
                         "TEXT NOT NULL, nick TEXT NOT NULL, text TEXT NOT NULL, action INTEGER NOT NULL DEFAULT 0);"
                         "INSERT INTO messages(time_ms, room, nick, text) VALUES (1, 'lobby', 'a', 'x'), (2, 'dev', "
                         "'a', 'y'), (3, 'lobby', 'b', 'z');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  SqliteWriter writer(path, 1);
  tulipa::EventLoop loop;
  SqliteStore store(loop, writer);
  std::vector<Message> lobby = after(loop, store, "lobby", 0, 10);
  ASSERT_EQ(lobby.size(), 2u);
  EXPECT_EQ(lobby[0].seq, 1u);
  EXPECT_EQ(lobby[1].seq, 2u);
  EXPECT_EQ(append_all(loop, store, {room_message("lobby", "c", "w")})[0].seq, 3u);
  EXPECT_EQ(append_all(loop, store, {room_message("dev", "c", "v")})[0].seq, 2u);
  flush(loop, store);
}

}  // namespace
