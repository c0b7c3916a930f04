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

// On the executor: one transaction for the whole batch; sets each message's id and seq. BEGIN IMMEDIATE takes the
// write lock first, so a room's next seq (its last one + 1) is read and written by one writer at a time, even with
// other processes on the same file.
std::vector<Message> write_in(sqlite3* db, std::vector<Message> batch) {
  exec(db, "BEGIN IMMEDIATE");
  try {
    Statement insert(db,
                     "INSERT INTO messages(time_ms, room, nick, text, action, recipient, seq) VALUES (?1, ?2, ?3, ?4, "
                     "?5, ?6, CASE WHEN ?6 = '' THEN COALESCE((SELECT seq FROM messages WHERE room = ?2 ORDER BY id "
                     "DESC LIMIT 1), 0) + 1 ELSE 0 END) RETURNING id, seq");
    for (Message& m : batch) {
      sqlite3_reset(insert.get());
      insert.bind(1, m.time_ms);
      insert.bind(2, m.room);
      insert.bind(3, m.nick);
      insert.bind(4, m.text);
      insert.bind(5, std::int64_t{m.action ? 1 : 0});
      insert.bind(6, m.to);
      if (insert.step() != SQLITE_ROW) fail(db, "sqlite insert returned no row");
      m.id = static_cast<std::uint64_t>(insert.integer(0));
      m.seq = static_cast<std::uint64_t>(insert.integer(1));
      insert.step();  // SQLITE_DONE
    }
    exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return batch;
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

SqliteStore::SqliteStore(tulipa::EventLoop& loop, std::string path) : BatchStore(loop), path_(std::move(path)) {
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
    // Reads go through a connection of their own: on the writer's, they would see its transaction before the
    // commit (a message nobody may see yet).
    reader_ = open_db(path_, SQLITE_OPEN_READONLY);
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

SqliteStore::~SqliteStore() {
  sqlite3_close_v2(reader_);
  sqlite3_close_v2(db_);
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

tulipa::Coro<std::vector<Message>> SqliteStore::write_batch(std::vector<Message> batch) {
  std::vector<Message> stored = co_await tulipa::run_in_executor(loop_, nullptr, write_in, db_, std::move(batch));
  co_return stored;
}

tulipa::Coro<std::vector<Message>> SqliteStore::read_after(std::string room, std::uint64_t after_id,
                                                           std::size_t limit) {
  std::vector<Message> got =
      co_await tulipa::run_in_executor(loop_, nullptr, read_from, reader_, room, after_id, limit);
  co_return got;
}

}  // namespace chat
