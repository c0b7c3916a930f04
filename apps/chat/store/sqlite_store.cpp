#include "sqlite_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include "tulipa/task.hpp"
#include "tulipa/to_thread.hpp"

namespace chat {
namespace {

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw std::runtime_error(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error(std::string("sqlite: ") + sql + ": " + msg);
  }
}

// A prepared statement, finalised when it goes.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) fail(db, std::string("sqlite: ") + sql);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const noexcept { return stmt_; }
  void bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  // SQLITE_ROW or SQLITE_DONE; throws otherwise.
  int step() {
    int rc = sqlite3_step(stmt_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(db_, "sqlite step");
    return rc;
  }
  std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }
  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// The room message on the current row of a query selecting `id, seq, time_ms, nick, text, action`, in that order.
Message message_from_row(const Statement& q, const std::string& room) {
  return Message{.id = static_cast<std::uint64_t>(q.integer(0)),
                 .seq = static_cast<std::uint64_t>(q.integer(1)),
                 .time_ms = q.integer(2),
                 .room = room,
                 .nick = q.text(3),
                 .text = q.text(4),
                 .action = q.integer(5) != 0};
}

// A room's messages after `after_id`, oldest first (the loop thread at start, else the executor).
std::vector<Message> read_from(sqlite3* db, const std::string& room, std::uint64_t after_id, std::size_t limit) {
  Statement q(db,
              "SELECT id, seq, time_ms, nick, text, action FROM messages WHERE room = ? AND id > ? ORDER BY id "
              "LIMIT ?");
  q.bind(1, room);
  q.bind(2, static_cast<std::int64_t>(after_id));
  q.bind(3, static_cast<std::int64_t>(limit));
  std::vector<Message> out;
  while (q.step() == SQLITE_ROW) out.push_back(message_from_row(q, room));
  return out;
}

bool has_column(sqlite3* db, const char* table, std::string_view column) {
  Statement q(db, (std::string("PRAGMA table_info(") + table + ")").c_str());
  while (q.step() == SQLITE_ROW) {
    if (q.text(1) == column) return true;
  }
  return false;
}

sqlite3* open_db(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
    std::string msg = "cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    throw std::runtime_error(msg);
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

}  // namespace

// --- the writer

SqliteWriter::SqliteWriter(std::string path, std::size_t lanes, Others others, std::size_t box_capacity)
    : path_(std::move(path)),
      lane_count_(lanes),
      others_(std::move(others)),
      box_capacity_(box_capacity),
      lanes_(std::make_unique<Lane[]>(lanes)) {
  if (lanes == 0) throw std::invalid_argument("SqliteWriter: no lane");
  std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create the data directory " + dir.string() + ": " + ec.message());
  }
  db_ = open_db(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  try {
    exec(db_, "PRAGMA journal_mode=WAL");
    exec(db_, "PRAGMA synchronous=NORMAL");
    // AUTOINCREMENT: ids never go back, even after the newest messages were deleted.
    exec(db_,
         "CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, "
         "room TEXT NOT NULL, nick TEXT NOT NULL, text TEXT NOT NULL, action INTEGER NOT NULL DEFAULT 0, "
         "recipient TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL DEFAULT 0)");
    // A file from before private messages and seq: add them, and number each room's messages in id order.
    if (!has_column(db_, "messages", "seq")) {
      exec(db_, "BEGIN IMMEDIATE");
      exec(db_, "ALTER TABLE messages ADD COLUMN recipient TEXT NOT NULL DEFAULT ''");
      exec(db_, "ALTER TABLE messages ADD COLUMN seq INTEGER NOT NULL DEFAULT 0");
      exec(db_,
           "UPDATE messages SET seq = (SELECT count(*) FROM messages m WHERE m.room = messages.room AND m.id <= "
           "messages.id)");
      exec(db_, "COMMIT");
    }
    // Room messages by room (a private message's room is ''), private ones by recipient.
    exec(db_, "CREATE INDEX IF NOT EXISTS messages_room ON messages(room, id)");
    exec(db_, "CREATE INDEX IF NOT EXISTS messages_recipient ON messages(recipient, id) WHERE recipient <> ''");
    thread_ = std::make_unique<tulipa::LoopGroup>(1, [](tulipa::EventLoop&, std::size_t) {});
    requests_ = std::make_unique<tulipa::Mailbox<Request>>(thread_->loop(0), box_capacity_,
                                                           [this](Request&& r) { take(std::move(r)); });
  } catch (...) {
    thread_.reset();
    sqlite3_close(db_);
    throw;
  }
}

SqliteWriter::~SqliteWriter() {
  // The loops are gone (or about to be): whatever the writer still commits in its last pass (nothing, when every
  // store was flushed) is told to nobody.
  for (std::size_t lane = 0; lane < lane_count_; ++lane) lanes_[lane].box.store(nullptr, std::memory_order_release);
  thread_->stop();
  thread_->join();
  requests_.reset();
  sqlite3_close_v2(db_);
}

void SqliteWriter::attach(std::size_t lane, tulipa::EventLoop& loop, SqliteStore* store) {
  if (lane >= lane_count_) throw std::invalid_argument("SqliteWriter: no lane " + std::to_string(lane));
  Lane& l = lanes_[lane];
  if (l.owned && &l.owned->owner() != &loop) throw std::logic_error("SqliteWriter: a lane belongs to one loop");
  if (!l.owned) {
    l.owned = std::make_unique<tulipa::Mailbox<Written>>(loop, box_capacity_, [this, lane](Written&& w) {
      Lane& to = lanes_[lane];
      if (w.own) {
        if (to.store) to.store->accepted(std::move(w));
      } else if (others_) {
        others_(lane, std::move(w.msg));
      }
    });
    l.box.store(l.owned.get(), std::memory_order_release);
  }
  l.store = store;
}

bool SqliteWriter::submit(Request& r) { return requests_->try_send(std::move(r)); }

// What the box hands over gathers for the next transaction, written once the loop has taken every message waiting.
void SqliteWriter::take(Request&& r) {
  batch_.push_back(std::move(r));
  if (commit_scheduled_) return;
  commit_scheduled_ = true;
  thread_->loop(0).call_soon([this] { commit(); });
}

// One transaction for the whole batch; sets each message's id and seq. BEGIN IMMEDIATE takes the write lock first,
// so a room's next seq (its last one + 1) is read and written by one writer at a time, even with other processes on
// the same file. Then every lane is told, in commit order.
void SqliteWriter::commit() {
  commit_scheduled_ = false;
  writing_.swap(batch_);
  std::exception_ptr error;
  try {
    exec(db_, "BEGIN IMMEDIATE");
    try {
      Statement insert(db_,
                       "INSERT INTO messages(time_ms, room, nick, text, action, recipient, seq) VALUES (?1, ?2, ?3, "
                       "?4, ?5, ?6, CASE WHEN ?6 = '' THEN COALESCE((SELECT seq FROM messages WHERE room = ?2 ORDER "
                       "BY id DESC LIMIT 1), 0) + 1 ELSE 0 END) RETURNING id, seq");
      for (Request& r : writing_) {
        Message& m = r.msg;
        sqlite3_reset(insert.get());
        insert.bind(1, m.time_ms);
        insert.bind(2, m.room);
        insert.bind(3, m.nick);
        insert.bind(4, m.text);
        insert.bind(5, std::int64_t{m.action ? 1 : 0});
        insert.bind(6, m.to);
        if (insert.step() != SQLITE_ROW) fail(db_, "sqlite insert returned no row");
        m.id = static_cast<std::uint64_t>(insert.integer(0));
        m.seq = static_cast<std::uint64_t>(insert.integer(1));
        insert.step();  // SQLITE_DONE
      }
      exec(db_, "COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    transactions_.fetch_add(1, std::memory_order_relaxed);
  } catch (const std::exception&) {
    error = std::current_exception();
  }
  bool fan_out = !error && others_ && lane_count_ > 1;
  for (Request& r : writing_) {
    if (fan_out && r.msg.to.empty()) {
      for (std::size_t lane = 0; lane < lane_count_; ++lane) {
        if (lane != r.lane) hand(lane, Written{.msg = r.msg});
      }
    }
    hand(r.lane, Written{.msg = error ? Message{} : std::move(r.msg), .error = error, .own = true});
  }
  writing_.clear();
}

void SqliteWriter::hand(std::size_t lane, Written&& w) {
  Lane& l = lanes_[lane];
  tulipa::Mailbox<Written>* box = l.box.load(std::memory_order_acquire);
  if (box == nullptr) return;  // not attached yet: its hub reads what it missed from the store when it starts
  if (l.overflow.empty()) {
    try {
      if (box->try_send(std::move(w))) return;
    } catch (const std::logic_error&) {
      return;  // that loop is closed: nobody there to tell
    }
  }
  l.overflow.push_back(std::move(w));
  retry();
}

// What a full box refused goes again, in order, a millisecond later.
void SqliteWriter::retry() {
  if (retrying_) return;
  retrying_ = true;
  thread_->loop(0).call_later(std::chrono::milliseconds(1), [this] {
    retrying_ = false;
    bool left = false;
    for (std::size_t lane = 0; lane < lane_count_; ++lane) {
      Lane& l = lanes_[lane];
      tulipa::Mailbox<Written>* box = l.box.load(std::memory_order_acquire);
      if (box == nullptr) {
        l.overflow.clear();
        continue;
      }
      try {
        while (!l.overflow.empty() && box->try_send(std::move(l.overflow.front()))) l.overflow.pop_front();
      } catch (const std::logic_error&) {
        l.overflow.clear();
      }
      left = left || !l.overflow.empty();
    }
    if (left) retry();
  });
}

// --- a loop's side

SqliteStore::SqliteStore(tulipa::EventLoop& loop, SqliteWriter& writer, std::size_t lane)
    : ReadingStore(loop), writer_(writer), lane_(lane) {
  // The writer made the file and its schema.
  reader_ = open_db(writer.path(), SQLITE_OPEN_READONLY);
  try {
    writer_.attach(lane, loop, this);
  } catch (...) {
    sqlite3_close_v2(reader_);
    throw;
  }
}

SqliteStore::~SqliteStore() {
  resend_.cancel();
  writer_.detach(lane_);
  sqlite3_close_v2(reader_);
}

void SqliteStore::append(Message msg, Accepted done) {
  accepting_.push_back(std::move(done));
  SqliteWriter::Request r{.msg = std::move(msg), .lane = lane_};
  if (unsent_.empty() && writer_.submit(r)) return;
  unsent_.push_back(std::move(r));
  send_waiting();
}

// What the writer's full box refused goes again, in order, a millisecond later.
void SqliteStore::send_waiting() {
  if (resending_) return;
  resending_ = true;
  resend_ = loop_.call_later(std::chrono::milliseconds(1), [this] {
    resending_ = false;
    while (!unsent_.empty() && writer_.submit(unsent_.front())) unsent_.pop_front();
    if (!unsent_.empty()) send_waiting();
  });
}

void SqliteStore::accepted(SqliteWriter::Written&& w) {
  if (accepting_.empty()) return;  // an append of a store that was on this lane before (it went without a flush)
  Accepted done = std::move(accepting_.front());
  accepting_.pop_front();
  done(std::move(w.msg), w.error);
  idle_check();
}

tulipa::Coro<std::vector<Message>> SqliteStore::read_after(std::string room, std::uint64_t after_id,
                                                           std::size_t limit) {
  std::vector<Message> got =
      co_await tulipa::run_in_executor(loop_, nullptr, read_from, reader_, room, after_id, limit);
  co_return got;
}

tulipa::Coro<std::map<std::string, std::vector<Message>>> SqliteStore::load_recent(std::size_t per_room) {
  // At start, before serving: read on the loop thread (nothing else runs yet).
  std::map<std::string, std::vector<Message>> out;
  std::vector<std::string> rooms;
  {
    Statement q(reader_, "SELECT DISTINCT room FROM messages WHERE room <> ''");
    while (q.step() == SQLITE_ROW) rooms.push_back(q.text(0));
  }
  Statement q(reader_,
              "SELECT id, seq, time_ms, nick, text, action FROM (SELECT * FROM messages WHERE room = ? ORDER BY id "
              "DESC LIMIT ?) ORDER BY id");
  for (const std::string& room : rooms) {
    sqlite3_reset(q.get());
    q.bind(1, room);
    q.bind(2, static_cast<std::int64_t>(std::max<std::size_t>(per_room, 1)));
    auto& list = out[room];
    while (q.step() == SQLITE_ROW) list.push_back(message_from_row(q, room));
  }
  co_return out;
}

}  // namespace chat
