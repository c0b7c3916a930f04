#include "pg_store.hpp"

#include <algorithm>
#include <utility>

#include "core/hub.hpp"
#include "tulipa/postgres/transaction.hpp"
#include "tulipa/task.hpp"

namespace chat {
namespace pg = tulipa::postgres;

namespace {

// Created by the first instance that starts; an advisory lock keeps two instances starting at once from racing on
// CREATE TABLE IF NOT EXISTS (which is not atomic in PostgreSQL).
constexpr std::int64_t schema_lock = 0x7475'6c69'7061'6368;  // "tulipach"
constexpr const char* schema[] = {
    "CREATE TABLE IF NOT EXISTS chat_rooms(name text PRIMARY KEY, seq bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS chat_messages(id bigserial PRIMARY KEY, room text NOT NULL, seq bigint NOT NULL, "
    "time_ms bigint NOT NULL, nick text NOT NULL, text text NOT NULL, action boolean NOT NULL DEFAULT false, "
    "recipient text NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS chat_messages_room ON chat_messages(room, id)",
    "CREATE INDEX IF NOT EXISTS chat_messages_recipient ON chat_messages(recipient, id) WHERE recipient <> ''",
};

constexpr const char* insert_room_message =
    "WITH r AS (INSERT INTO chat_rooms(name, seq) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET seq = "
    "chat_rooms.seq + 1 RETURNING seq) INSERT INTO chat_messages(room, seq, time_ms, nick, text, action) SELECT $1, "
    "r.seq, $2, $3, $4, $5 FROM r RETURNING id, seq";
constexpr const char* insert_private_message =
    "INSERT INTO chat_messages(room, seq, time_ms, nick, text, action, recipient) VALUES ('', 0, $1, $2, $3, false, "
    "$4) RETURNING id, seq";
constexpr const char* select_after =
    "SELECT id, seq, time_ms, nick, text, action FROM chat_messages WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3";
constexpr const char* select_recent =
    "SELECT m.id, m.seq, m.time_ms, m.room, m.nick, m.text, m.action FROM chat_rooms r CROSS JOIN LATERAL (SELECT * "
    "FROM chat_messages WHERE room = r.name ORDER BY id DESC LIMIT $1) m ORDER BY m.id";

pg::PoolOptions pool_options() {
  pg::PoolOptions o;
  o.max_size = 4;
  // The schema's "already exists, skipping" notices on every start are not news; warnings still are.
  o.connect.on_notice = [](const pg::Notice& n) {
    if (n.severity != "NOTICE") Hub::log_to_stderr("postgres " + n.severity + ": " + n.message);
  };
  return o;
}

Message row_message(const pg::Row& row, std::string room) {
  return Message{.id = static_cast<std::uint64_t>(row.get<std::int64_t>(0)),
                 .seq = static_cast<std::uint64_t>(row.get<std::int64_t>(1)),
                 .time_ms = row.get<std::int64_t>(2),
                 .room = std::move(room),
                 .nick = row.get<std::string>(3),
                 .text = row.get<std::string>(4),
                 .action = row.get<bool>(5)};
}

}  // namespace

PgStore::PgStore(tulipa::EventLoop& loop, std::string conninfo)
    : BatchStore(loop), conninfo_(std::move(conninfo)), pool_(conninfo_, pool_options()) {}

PgStore::~PgStore() { pool_.close(); }

tulipa::Coro<std::unique_ptr<PgStore>> PgStore::open(std::string conninfo) {
  std::unique_ptr<PgStore> store(new PgStore(tulipa::get_running_loop(), std::move(conninfo)));
  pg::PooledConnection conn = co_await store->pool_.acquire();
  pg::Transaction tx = co_await conn->begin();
  co_await tx.query("SELECT pg_advisory_xact_lock($1)", schema_lock);
  for (const char* sql : schema) co_await tx.query(sql);
  co_await tx.commit();
  co_return store;
}

std::string PgStore::describe() const {
  // The conninfo without a password.
  std::string shown = conninfo_;
  if (std::size_t scheme = shown.find("://"); scheme != std::string::npos) {
    std::size_t at = shown.find('@', scheme);
    std::size_t colon = shown.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) shown.replace(colon, at - colon, ":***");
  }
  return "PostgreSQL " + shown;
}

tulipa::Coro<std::vector<Message>> PgStore::write_batch(std::vector<Message> batch) {
  pg::PooledConnection conn = co_await pool_.acquire();
  pg::Transaction tx = co_await conn->begin();
  for (Message& m : batch) {
    pg::Result r;
    if (m.to.empty()) {
      r = co_await tx.query(insert_room_message, m.room, m.time_ms, m.nick, m.text, m.action);
    } else {
      r = co_await tx.query(insert_private_message, m.time_ms, m.nick, m.text, m.to);
    }
    m.id = static_cast<std::uint64_t>(r[0].get<std::int64_t>(0));
    m.seq = static_cast<std::uint64_t>(r[0].get<std::int64_t>(1));
  }
  co_await tx.commit();
  co_return batch;
}

tulipa::Coro<std::vector<Message>> PgStore::read_after(std::string room, std::uint64_t after_id, std::size_t limit) {
  pg::Result r =
      co_await pool_.query(select_after, room, static_cast<std::int64_t>(after_id), static_cast<std::int64_t>(limit));
  std::vector<Message> got;
  got.reserve(r.size());
  for (pg::Row row : r) got.push_back(row_message(row, room));
  co_return got;
}

tulipa::Coro<std::map<std::string, std::vector<Message>>> PgStore::load_recent(std::size_t per_room) {
  std::int64_t n = static_cast<std::int64_t>(std::max<std::size_t>(per_room, 1));
  pg::Result r = co_await pool_.query(select_recent, n);
  std::map<std::string, std::vector<Message>> out;
  for (pg::Row row : r) {
    std::string room = row.get<std::string>(3);
    Message m{.id = static_cast<std::uint64_t>(row.get<std::int64_t>(0)),
              .seq = static_cast<std::uint64_t>(row.get<std::int64_t>(1)),
              .time_ms = row.get<std::int64_t>(2),
              .room = room,
              .nick = row.get<std::string>(4),
              .text = row.get<std::string>(5),
              .action = row.get<bool>(6)};
    out[room].push_back(std::move(m));
  }
  co_return out;
}

}  // namespace chat
