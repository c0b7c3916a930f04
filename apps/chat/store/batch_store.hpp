// The PostgreSQL store's batching (SQLite has one writer of its own for every loop: sqlite_store.hpp): appends
// gather while the previous batch is being written, and a writer task hands each batch to write_batch() (one
// transaction); a message's callback runs after the batch that holds it committed, in the order of the appends.
// Reads (messages_after) run as tasks of their own; flush() waits for the writes and the reads made so far.
//
// Threads: the loop's thread. Lifetime: flush (and wait for it) before destroying the store.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/store.hpp"
#include "tulipa/loop.hpp"

namespace chat {

class BatchStore : public Store {
 public:
  void append(Message msg, Accepted done) final;
  void messages_after(std::string room, std::uint64_t after_id, std::size_t limit, Loaded done) final;
  // Once every append and read made so far has completed.
  void flush(std::function<void()> done) final;

  // Transactions written so far (each holds a batch of appends).
  std::uint64_t transactions() const noexcept { return transactions_; }

 protected:
  explicit BatchStore(tulipa::EventLoop& loop) noexcept : loop_(loop) {}
  // Stores `batch` in one transaction: the messages with their ids and seqs, in order; throws when nothing was
  // stored.
  virtual tulipa::Coro<std::vector<Message>> write_batch(std::vector<Message> batch) = 0;
  // The room's messages after `after_id`, oldest first, at most `limit`.
  virtual tulipa::Coro<std::vector<Message>> read_after(std::string room, std::uint64_t after_id,
                                                        std::size_t limit) = 0;

  tulipa::EventLoop& loop_;

 private:
  struct Pending {
    Message msg;
    Accepted done;
  };
  tulipa::Coro<void> writer();
  tulipa::Coro<void> reader(std::string room, std::uint64_t after_id, std::size_t limit, Loaded done);
  void idle_check();  // the flush waiters go once nothing is written or read

  std::vector<Pending> pending_;
  std::vector<std::function<void()>> flush_waiters_;
  bool writing_ = false;
  std::size_t reads_ = 0;
  std::uint64_t transactions_ = 0;
};

}  // namespace chat
