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

#include "core/store.hpp"
#include "tulipa/loop.hpp"

struct sqlite3;

namespace chat {

class SqliteStore final : public Store {
 public:
  // Opens (or creates) the database at `path`, creating its directory; throws std::runtime_error with SQLite's
  // message when it cannot.
  SqliteStore(tulipa::EventLoop& loop, std::string path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void append(Message msg, Accepted done) override;
  void messages_after(std::string room, std::uint64_t after_id, std::size_t limit, Loaded done) override;
  tulipa::Coro<std::map<std::string, std::vector<Message>>> load_recent(std::size_t per_room) override;
  // Once every append and read made so far has completed.
  void flush(std::function<void()> done) override;
  std::string describe() const override { return "SQLite " + path_; }

  // Transactions written so far (each holds a batch of appends).
  std::uint64_t transactions() const noexcept { return transactions_; }

 private:
  struct Pending {
    Message msg;
    Accepted done;
  };
  void start_writer();
  void idle_check();  // the flush waiters go once nothing is written or read

  tulipa::EventLoop& loop_;
  std::string path_;
  sqlite3* db_ = nullptr;
  sqlite3* reader_ = nullptr;
  std::size_t reads_ = 0;  // messages_after in flight
  std::vector<Pending> pending_;
  std::vector<std::function<void()>> flush_waiters_;
  bool writing_ = false;
  std::uint64_t transactions_ = 0;
};

}  // namespace chat
