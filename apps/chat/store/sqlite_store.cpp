#include "sqlite_store.hpp"

#include <sqlite3.h>

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

// On the executor: one transaction for the whole batch; sets each message's id.
std::vector<Message> write_batch(sqlite3* db, std::vector<Message> batch) {
  exec(db, "BEGIN IMMEDIATE");
  try {
    Statement insert(db, "INSERT INTO messages(time_ms, room, nick, text, action) VALUES (?, ?, ?, ?, ?)");
    for (Message& m : batch) {
      sqlite3_reset(insert.get());
      insert.bind(1, m.time_ms);
      insert.bind(2, m.room);
      insert.bind(3, m.nick);
      insert.bind(4, m.text);
      insert.bind(5, std::int64_t{m.action ? 1 : 0});
      insert.step();
      m.id = static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db));
    }
    exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return batch;
}

}  // namespace

SqliteStore::SqliteStore(tulipa::EventLoop& loop, std::string path) : loop_(loop), path_(std::move(path)) {
  std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create the data directory " + dir.string() + ": " + ec.message());
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string msg = "cannot open " + path_ + ": " + (db_ ? sqlite3_errmsg(db_) : "out of memory");
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error(msg);
  }
  try {
    sqlite3_busy_timeout(db_, 5000);
    exec(db_, "PRAGMA journal_mode=WAL");
    exec(db_, "PRAGMA synchronous=NORMAL");
    // AUTOINCREMENT: ids never go back, even after the newest messages were deleted.
    exec(db_,
         "CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, "
         "room TEXT NOT NULL, nick TEXT NOT NULL, text TEXT NOT NULL, action INTEGER NOT NULL DEFAULT 0)");
    exec(db_, "CREATE INDEX IF NOT EXISTS messages_room ON messages(room, id)");
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

SqliteStore::~SqliteStore() { sqlite3_close_v2(db_); }

std::map<std::string, std::vector<Message>> SqliteStore::load_recent(std::size_t per_room) {
  std::map<std::string, std::vector<Message>> out;
  std::vector<std::string> rooms;
  {
    Statement q(db_, "SELECT DISTINCT room FROM messages");
    while (q.step() == SQLITE_ROW) rooms.push_back(q.text(0));
  }
  Statement q(db_,
              "SELECT id, time_ms, nick, text, action FROM (SELECT * FROM messages WHERE room = ? ORDER BY id DESC "
              "LIMIT ?) ORDER BY id");
  for (const std::string& room : rooms) {
    sqlite3_reset(q.get());
    q.bind(1, room);
    q.bind(2, static_cast<std::int64_t>(per_room));
    auto& list = out[room];
    while (q.step() == SQLITE_ROW) {
      list.push_back(Message{.id = static_cast<std::uint64_t>(q.integer(0)),
                             .time_ms = q.integer(1),
                             .room = room,
                             .nick = q.text(2),
                             .text = q.text(3),
                             .action = q.integer(4) != 0});
    }
  }
  return out;
}

void SqliteStore::append(Message msg, Accepted done) {
  pending_.push_back({std::move(msg), std::move(done)});
  if (!writing_) start_writer();
}

void SqliteStore::start_writer() {
  writing_ = true;
  tulipa::create_task(
      loop_,
      [](SqliteStore* self) -> tulipa::Coro<void> {
        while (!self->pending_.empty()) {
          std::vector<Pending> batch = std::move(self->pending_);
          self->pending_.clear();
          std::vector<Message> messages;
          messages.reserve(batch.size());
          for (Pending& p : batch) messages.push_back(std::move(p.msg));
          std::exception_ptr error;
          try {
            messages =
                co_await tulipa::run_in_executor(self->loop_, nullptr, write_batch, self->db_, std::move(messages));
            ++self->transactions_;
          } catch (const std::exception&) {
            error = std::current_exception();
          }
          for (std::size_t i = 0; i < batch.size(); ++i) {
            batch[i].done(error ? Message{} : std::move(messages[i]), error);
          }
        }
        self->writing_ = false;
        for (auto& waiter : std::exchange(self->flush_waiters_, {})) waiter();
      }(this),
      "sqlite writer");
}

void SqliteStore::flush(std::function<void()> done) {
  if (!writing_) {
    loop_.call_soon(std::move(done));
    return;
  }
  flush_waiters_.push_back(std::move(done));
}

}  // namespace chat
