// The chat's history in PostgreSQL (`--store postgres://...`), through tulipa's own driver (tulipa::postgres), so
// that several instances can share it (--redis).
//
// Appends are written in batches like the SQLite store's: while one transaction is being written, new messages
// gather, and the next transaction takes all of them; a message's callback runs after the COMMIT that holds it
// returned, and only then does the hub broadcast it.
//
// Seq: each room has a row in chat_rooms whose counter the insert bumps in the same statement (INSERT ... ON
// CONFLICT DO UPDATE ... RETURNING seq). The row stays locked until the transaction ends, so writers of one room
// (from any instance) take turns: seq has no gap and no repeat, and a room's ids (bigserial, drawn after the lock)
// increase with it. Private messages go in chat_messages with room '' and their recipient.
//
// Connections: a pool (tulipa::postgres::Pool) shared by the writer and the reads; a connection lost with the
// server is replaced on the next use, and what was being written then fails (the senders are told).
//
// Threads: the loop's thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "batch_store.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/postgres/pool.hpp"

namespace chat {

class PgStore final : public BatchStore {
 public:
  // Connects (on the running loop) and creates the tables when missing; throws tulipa::postgres::ConnectionError or
  // Error with the server's message. `conninfo`: a libpq URI or key=value string.
  static tulipa::Coro<std::unique_ptr<PgStore>> open(std::string conninfo);
  ~PgStore() override;
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  tulipa::Coro<std::map<std::string, std::vector<Message>>> load_recent(std::size_t per_room) override;
  std::string describe() const override;

 private:
  PgStore(tulipa::EventLoop& loop, std::string conninfo);
  tulipa::Coro<std::vector<Message>> write_batch(std::vector<Message> batch) override;
  tulipa::Coro<std::vector<Message>> read_after(std::string room, std::uint64_t after_id, std::size_t limit) override;

  std::string conninfo_;
  tulipa::postgres::Pool pool_;
};

}  // namespace chat
