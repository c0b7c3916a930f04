// The chat's history in an SQLite file (Debian's libsqlite3). SQLite has no asynchronous API, so appends are
// written on the loop's default executor (to_thread), in batches: while one transaction is being written, new
// messages gather, and the next transaction takes all of them. A message's callback runs after the transaction
// that holds it committed, and only then does the hub broadcast it.
//
// Durability: WAL mode with synchronous=NORMAL. A committed transaction is in the WAL file before the commit
// returns, so killing the process (SIGKILL) loses nothing that was committed; only a power cut may lose the last
// transactions (synchronous=FULL would sync the WAL on each commit: not needed against a crash of the process).
//
// Seq: each insert numbers its room's message (the room's last seq + 1) inside the batch's BEGIN IMMEDIATE
// transaction, which holds the file's write lock: no two writers (threads or processes) can give out one seq twice.
// Private messages go in the same table, with room '' and their recipient.
//
// Threads: two connections, opened in serialized mode: the writer's, used on the executor, and a reader's for
// load_recent (the loop thread, at start) and messages_after (the executor). Reads never go through the writer's
// connection, where they would see a transaction before it committed. A file from before seq and private messages
// is upgraded when opened.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "batch_store.hpp"
#include "tulipa/loop.hpp"

struct sqlite3;

namespace chat {

class SqliteStore final : public BatchStore {
 public:
  // Opens (or creates) the database at `path`, creating its directory; throws std::runtime_error with SQLite's
  // message when it cannot.
  SqliteStore(tulipa::EventLoop& loop, std::string path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  tulipa::Coro<std::map<std::string, std::vector<Message>>> load_recent(std::size_t per_room) override;
  std::string describe() const override { return "SQLite " + path_; }

 private:
  tulipa::Coro<std::vector<Message>> write_batch(std::vector<Message> batch) override;
  tulipa::Coro<std::vector<Message>> read_after(std::string room, std::uint64_t after_id, std::size_t limit) override;

  std::string path_;
  sqlite3* db_ = nullptr;
  sqlite3* reader_ = nullptr;
};

}  // namespace chat
