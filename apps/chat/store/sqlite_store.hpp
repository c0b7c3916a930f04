// The chat's history in an SQLite file (Debian's libsqlite3), for one loop or for the N loops of --loops N.
//
// One writer for all loops (SqliteWriter): SQLite lets one connection write at a time, and two connections that
// both write wait for each other's lock in SQLite's busy handler, which sleeps (1, 2, 5, 10 ... ms): with one store
// connection per loop, 2 loops made 215 such sleeps in a 4 s load and were slower than 1. So one connection writes,
// on a thread of its own (a loop of its own: a LoopGroup of 1), and every loop hands it messages through a Mailbox
// (lock-free, no allocation: the Message is moved in and out). SQLite has no asynchronous API; the writer thread
// blocks in it, which is what it is for. Batches: while one transaction is being written, new messages gather in
// the box, and the next transaction takes all of them.
//
// What comes back: after COMMIT, the writer hands every loop, through that loop's own box and in commit order, each
// message of the transaction: to the loop that asked, its acceptance (with id and seq; the Store::append callback
// runs, and only then does the hub broadcast it); to every other loop, the room messages (SqliteWriter::Others: the
// hub's deliver). One writer and one box per loop, so each loop sees every room in seq order, with no gap to read
// back from the store, and no lock on the hot path. Private messages go only to the loop that asked (the directory
// routes them, bus/loop_bus.hpp).
//
// Reads stay per loop (SqliteStore): each loop has a reader connection of its own (WAL: readers never wait for the
// writer), used for load_recent (on the loop thread, at start) and messages_after (on the loop's executor). Reads
// never go through the writer's connection, where they would see a transaction before it committed.
//
// Durability: WAL mode with synchronous=NORMAL. A committed transaction is in the WAL file before the commit
// returns, so killing the process (SIGKILL) loses nothing that was committed; only a power cut may lose the last
// transactions (synchronous=FULL would sync the WAL on each commit: not needed against a crash of the process).
//
// Seq: each insert numbers its room's message (the room's last seq + 1) inside the batch's BEGIN IMMEDIATE
// transaction, which holds the file's write lock: no two writers (another process on the same file, say) can give
// out one seq twice. Private messages go in the same table, with room '' and their recipient. A file from before seq
// and private messages is upgraded when opened.
//
// Threads and lifetimes: SqliteWriter is made and destroyed outside the loops (main, before and after them); it
// must outlive the last pass of every loop that attached a SqliteStore (its boxes may be drained until then: destroy
// it after LoopGroup::join, or after the loop of a single-loop program is gone). A SqliteStore belongs to its loop
// (every call on it); flush it before destroying it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "batch_store.hpp"
#include "tulipa/handle.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/loop_group.hpp"
#include "tulipa/mailbox.hpp"

struct sqlite3;

namespace chat {

class SqliteStore;

class SqliteWriter {
 public:
  // Room messages another loop stored, for loop `lane` (called on that loop's thread, in commit order).
  using Others = std::function<void(std::size_t lane, Message&& m)>;

  // Opens (or creates) the database at `path`, creating its directory, and starts the writer thread; `lanes`: how
  // many loops may attach (SqliteStore). Throws std::runtime_error with SQLite's message when it cannot.
  SqliteWriter(std::string path, std::size_t lanes, Others others = {}, std::size_t box_capacity = 4096);
  // Stops the writer thread (after it wrote what it was handed) and closes the database.
  ~SqliteWriter();
  SqliteWriter(const SqliteWriter&) = delete;
  SqliteWriter& operator=(const SqliteWriter&) = delete;

  const std::string& path() const noexcept { return path_; }
  std::size_t lanes() const noexcept { return lane_count_; }
  // Transactions committed so far (any thread).
  std::uint64_t transactions() const noexcept { return transactions_.load(std::memory_order_relaxed); }

 private:
  friend class SqliteStore;
  struct Request {
    Message msg{};
    std::size_t lane = 0;
  };
  // What the writer hands a loop: its own message accepted (`own`; `error` set when the transaction failed), or
  // another loop's room message.
  struct Written {
    Message msg{};
    std::exception_ptr error{};
    bool own = false;
  };
  struct Lane {
    std::atomic<tulipa::Mailbox<Written>*> box{nullptr};  // set once, by attach(), on the lane's loop
    std::unique_ptr<tulipa::Mailbox<Written>> owned;
    SqliteStore* store = nullptr;  // the lane's loop only
    std::deque<Written> overflow;  // the writer thread only: what a full box refused, sent again in order
  };

  // On loop `loop` (a SqliteStore's constructor): lane `lane` delivers there from now on.
  void attach(std::size_t lane, tulipa::EventLoop& loop, SqliteStore* store);
  void detach(std::size_t lane) noexcept { lanes_[lane].store = nullptr; }
  // Any thread: false when the writer's box is full (`r` is then untouched).
  bool submit(Request& r);

  // The writer thread.
  void take(Request&& r);
  void commit();
  void hand(std::size_t lane, Written&& w);
  void retry();

  std::string path_;
  std::size_t lane_count_;
  Others others_;
  std::size_t box_capacity_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<Lane[]> lanes_;
  std::vector<Request> batch_;  // the writer thread: what the next transaction takes
  std::vector<Request> writing_;
  bool commit_scheduled_ = false;
  bool retrying_ = false;
  std::atomic<std::uint64_t> transactions_{0};
  std::unique_ptr<tulipa::LoopGroup> thread_;
  std::unique_ptr<tulipa::Mailbox<Request>> requests_;  // owned by the writer's loop
};

class SqliteStore final : public ReadingStore {
 public:
  // Loop `lane` of `writer` (0 for a single loop): opens its own reader connection. Throws std::runtime_error with
  // SQLite's message when it cannot.
  SqliteStore(tulipa::EventLoop& loop, SqliteWriter& writer, std::size_t lane = 0);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void append(Message msg, Accepted done) override;
  tulipa::Coro<std::map<std::string, std::vector<Message>>> load_recent(std::size_t per_room) override;
  std::string describe() const override { return "SQLite " + writer_.path(); }

 private:
  friend class SqliteWriter;
  tulipa::Coro<std::vector<Message>> read_after(std::string room, std::uint64_t after_id, std::size_t limit) override;
  bool writing() const noexcept override { return !accepting_.empty(); }
  void accepted(SqliteWriter::Written&& w);
  void send_waiting();

  SqliteWriter& writer_;
  std::size_t lane_;
  sqlite3* reader_ = nullptr;
  std::deque<Accepted> accepting_;            // appends handed to the writer, oldest first
  std::deque<SqliteWriter::Request> unsent_;  // what the writer's full box refused, sent again in order
  tulipa::TimerHandle resend_;
  bool resending_ = false;
};

}  // namespace chat
