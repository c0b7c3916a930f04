// What the SQLite and PostgreSQL stores share.
//
// ReadingStore: reads (messages_after) run as tasks of their own, through read_after(); flush() waits for them and
// for the appends the store says are in flight (writing()); the store calls idle_check() when those are over.
//
// BatchStore (PostgreSQL; SQLite has one writer of its own for every loop: sqlite_store.hpp): appends gather while
// the previous batch is being written, and a writer task hands each batch to write_batch() (one transaction); a
// message's callback runs after the batch that holds it committed, in the order of the appends.
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

class ReadingStore : public Store {
 public:
  void messages_after(std::string room, std::uint64_t after_id, std::size_t limit, Loaded done) final;
  // Once every append and read made so far has completed.
  void flush(std::function<void()> done) final;

 protected:
  explicit ReadingStore(tulipa::EventLoop& loop) noexcept : loop_(loop) {}
  // The room's messages after `after_id`, oldest first, at most `limit`.
  virtual tulipa::Coro<std::vector<Message>> read_after(std::string room, std::uint64_t after_id,
                                                        std::size_t limit) = 0;
  // Appends are in flight (flush waits).
  virtual bool writing() const noexcept = 0;
  // The flush waiters go once nothing is written or read.
  void idle_check();

  tulipa::EventLoop& loop_;

 private:
  tulipa::Coro<void> reader(std::string room, std::uint64_t after_id, std::size_t limit, Loaded done);

  std::vector<std::function<void()>> flush_waiters_;
  std::size_t reads_ = 0;
};

class BatchStore : public ReadingStore {
 public:
  void append(Message msg, Accepted done) final;

  // Transactions written so far (each holds a batch of appends).
  std::uint64_t transactions() const noexcept { return transactions_; }

 protected:
  explicit BatchStore(tulipa::EventLoop& loop) noexcept : ReadingStore(loop) {}
  // Stores `batch` in one transaction: the messages with their ids and seqs, in order; throws when nothing was
  // stored.
  virtual tulipa::Coro<std::vector<Message>> write_batch(std::vector<Message> batch) = 0;
  bool writing() const noexcept final { return writing_; }

 private:
  struct Pending {
    Message msg;
    Accepted done;
  };
  tulipa::Coro<void> writer();

  std::vector<Pending> pending_;
  bool writing_ = false;
  std::uint64_t transactions_ = 0;
};

}  // namespace chat
