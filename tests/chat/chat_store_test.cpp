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

TEST(SqliteStore, KeepsTheStoresContract) {
  TempDir dir;
  tulipa::EventLoop loop;
  SqliteStore store(loop, (dir.path / "chat.db").string());
  check_store_contract(loop, store);
}

TEST(SqliteStore, IdsAndSeqGoOnAfterARestart) {
  TempDir dir;
  std::string path = (dir.path / "chat.db").string();
  tulipa::EventLoop loop;
  std::uint64_t last_id = 0;
  {
    SqliteStore store(loop, path);
    last_id = append_all(loop, store, {room_message("lobby", "a", "1"), room_message("lobby", "a", "2")})[1].id;
    flush(loop, store);
  }
  SqliteStore store(loop, path);
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
  tulipa::EventLoop loop;
  SqliteStore store(loop, path);
  std::vector<Message> lobby = after(loop, store, "lobby", 0, 10);
  ASSERT_EQ(lobby.size(), 2u);
  EXPECT_EQ(lobby[0].seq, 1u);
  EXPECT_EQ(lobby[1].seq, 2u);
  EXPECT_EQ(append_all(loop, store, {room_message("lobby", "c", "w")})[0].seq, 3u);
  EXPECT_EQ(append_all(loop, store, {room_message("dev", "c", "v")})[0].seq, 2u);
  flush(loop, store);
}

}  // namespace
