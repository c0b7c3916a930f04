// The chat's history in an SQLite file (Debian's libsqlite3). SQLite has no asynchronous API, so appends are
// written on the loop's default executor (to_thread), in batches: while one transaction is being written, new
// messages gather, and the next transaction takes all of them. A message's callback runs after the transaction
// that holds it committed, and only then does the hub broadcast it.
//
// Durability: WAL mode with synchronous=NORMAL. A committed transaction is in the WAL file before the commit
// returns, so killing the process (SIGKILL) loses nothing that was committed; only a power cut may lose the last
// transactions (synchronous=FULL would sync the WAL on each commit: not needed against a crash of the process).
//
// Threads: one connection, opened in serialized mode; the executor writes with it while the loop thread is only
// allowed to read (load_recent) before the first append.
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
  std::map<std::string, std::vector<Message>> load_recent(std::size_t per_room) override;
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

  tulipa::EventLoop& loop_;
  std::string path_;
  sqlite3* db_ = nullptr;
  std::vector<Pending> pending_;
  std::vector<std::function<void()>> flush_waiters_;
  bool writing_ = false;
  std::uint64_t transactions_ = 0;
};

}  // namespace chat
