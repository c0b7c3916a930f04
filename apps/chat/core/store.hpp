// Where messages are kept (store/: SQLite, PostgreSQL; MemoryStore here). The hub broadcasts a message only after
// its store accepted it, so what any client saw is stored (the SIGKILL test checks it).
//
// Ids: a room's messages get `seq` 1, 2, 3, ... in the order they commit, with no gap, and ids that increase with
// them; several instances sharing one store (--redis) therefore agree on each room's order, and one that missed a
// message knows it (a gap in seq) and reads it back with messages_after().
//
// Threads: every call, and every callback, is on the loop's thread. Callbacks run later (never inside the call
// that was given them); appends complete in the order they were made.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "message.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/loop.hpp"

namespace chat {

class Store {
 public:
  // `stored` is the message with its id (and seq), when `error` is null.
  using Accepted = std::function<void(Message stored, std::exception_ptr error)>;
  // Messages oldest first, when `error` is null.
  using Loaded = std::function<void(std::vector<Message> messages, std::exception_ptr error)>;

  virtual ~Store() = default;

  // Stores `msg` (its id and seq are ignored): a room message, or a private one (`to` set; seq stays 0). `done` is
  // called once it is stored (committed) or failed.
  virtual void append(Message msg, Accepted done) = 0;
  // The room's messages with an id above `after_id`, oldest first, at most `limit` of them (catch-up beyond what
  // the hub keeps in memory; an instance filling a gap).
  virtual void messages_after(std::string room, std::uint64_t after_id, std::size_t limit, Loaded done) = 0;
  // At start, before serving: the last `per_room` messages of every room (at least its last one, so that the hub
  // knows where each room is), oldest first.
  virtual tulipa::Coro<std::map<std::string, std::vector<Message>>> load_recent(std::size_t per_room) = 0;
  // Calls `done` once every append made so far has completed (shutdown: flush before exiting).
  virtual void flush(std::function<void()> done) = 0;
  // Where the messages go, for the start-up banner.
  virtual std::string describe() const = 0;
};

// Keeps messages in memory only (`--store memory:`; the core's tests): accepts each at the next loop pass.
class MemoryStore final : public Store {
 public:
  explicit MemoryStore(tulipa::EventLoop& loop) : loop_(loop) {}
  void append(Message msg, Accepted done) override;
  void messages_after(std::string room, std::uint64_t after_id, std::size_t limit, Loaded done) override;
  tulipa::Coro<std::map<std::string, std::vector<Message>>> load_recent(std::size_t per_room) override;
  void flush(std::function<void()> done) override;
  std::string describe() const override { return "memory (nothing kept after exit)"; }

  const std::vector<Message>& messages() const noexcept { return messages_; }
  // Makes the next appends fail (a full disk, a lost database) until cleared: for the tests of that path.
  void set_failing(bool failing) noexcept { failing_ = failing; }

 private:
  tulipa::EventLoop& loop_;
  std::vector<Message> messages_;  // room and private messages, in id order
  std::unordered_map<std::string, std::uint64_t> last_seq_;
  std::uint64_t next_id_ = 1;
  bool failing_ = false;
};

}  // namespace chat
