// Where room messages are kept. The hub broadcasts a message only after its store accepted it, so what any client
// saw is stored (the SIGKILL test checks it).
//
// Threads: every call, and every callback, is on the loop's thread. Callbacks run later (never inside the call
// that was given them), in the order the appends were made.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "message.hpp"
#include "tulipa/loop.hpp"

namespace chat {

class Store {
 public:
  // `stored` is the message with its id, when `error` is null.
  using Accepted = std::function<void(Message stored, std::exception_ptr error)>;

  virtual ~Store() = default;

  // Stores `msg` (its id is ignored); `done` is called once it is stored or failed.
  virtual void append(Message msg, Accepted done) = 0;
  // At start, before serving (may block): the last `per_room` messages of every room, oldest first.
  virtual std::map<std::string, std::vector<Message>> load_recent(std::size_t per_room) = 0;
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
  std::map<std::string, std::vector<Message>> load_recent(std::size_t per_room) override;
  void flush(std::function<void()> done) override;
  std::string describe() const override { return "memory (nothing kept after exit)"; }

  const std::vector<Message>& messages() const noexcept { return messages_; }
  // Makes the next appends fail (a full disk, a lost database) until cleared: for the tests of that path.
  void set_failing(bool failing) noexcept { failing_ = failing; }

 private:
  tulipa::EventLoop& loop_;
  std::vector<Message> messages_;
  std::uint64_t next_id_ = 1;
  bool failing_ = false;
};

}  // namespace chat
