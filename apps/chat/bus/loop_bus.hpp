// Rooms across the loops of one process (`--loops N`): each loop runs a hub of its own. With PostgreSQL, each loop
// has a store connection of its own on one database (which numbers a room's messages as they commit, whoever writes
// them), and the loops tell each other about the messages they stored as instances do through Redis (core/bus.hpp):
// each hub publishes what it stored, every other hub gets it through its Mailbox and puts each room in seq order
// (Hub::deliver), reading a gap back from the store. So the hot path takes no lock: a stored message is one try_send
// per other loop into a lock-free bounded box, and each loop broadcasts to its own members. A box that is full keeps
// the message in the sender's outbox and sends it again at the next pass. With SQLite, one writer serves every loop
// and hands each loop every room message in commit order itself (store/sqlite_store.hpp, through deliver() below):
// the hubs then publish nothing here, and the loop bus carries only nicks and private messages.
//
// Nicks and private messages (core/directory.hpp) go through a map under a mutex: claims are rare (/nick, a page's
// hello) and not on the hot path. A private message goes to the Mailbox of the loop holding the nick. Guest names
// carry their loop's number (guest-N-M).
//
// Threads: LoopHubs is shared; a LoopBus belongs to its loop. Lifetime: LoopHubs outlives the LoopGroup (its
// boxes may be drained until a loop's last pass); a hub detaches (set_hub(i, nullptr), on its loop) before it goes.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/bus.hpp"
#include "core/directory.hpp"
#include "core/hub.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/mailbox.hpp"

namespace chat {

class LoopHubs {
 public:
  // One box per loop, each owned by `loops[i]` (made before the loops serve; any thread).
  explicit LoopHubs(const std::vector<tulipa::EventLoop*>& loops, std::size_t capacity = 4096);
  std::size_t size() const noexcept { return boxes_.size(); }
  // On loop i: what its box hands over (null: dropped, the hub is gone).
  void set_hub(std::size_t i, Hub* hub) noexcept { hubs_[i] = hub; }
  // Any thread: false when loop i's box is full (or the loop was closed).
  bool send(std::size_t i, const Message& m);
  // On loop i: hands `m` (stored by another loop) to its hub, if it has one (the SQLite writer's fan-out).
  void deliver(std::size_t i, Message&& m) {
    if (Hub* hub = hubs_[i]) hub->deliver(std::move(m));
  }

 private:
  friend class LoopBus;
  std::vector<Hub*> hubs_;  // hubs_[i]: loop i's only
  std::vector<std::unique_ptr<tulipa::Mailbox<Message>>> boxes_;
  std::mutex nicks_lock_;
  std::unordered_map<std::string, std::size_t> nicks_;  // folded nick -> loop
};

class LoopBus final : public Bus, public Directory {
 public:
  LoopBus(tulipa::EventLoop& loop, LoopHubs& hubs, std::size_t index);
  ~LoopBus() override;
  LoopBus(const LoopBus&) = delete;
  LoopBus& operator=(const LoopBus&) = delete;

  void publish(const Message& m) override;
  std::string_view guest_prefix() const override { return guest_prefix_; }
  void claim(std::string key, Done done) override;
  void release(std::string key) override;
  void route(const Message& m, Done done) override;

 private:
  void retry();

  tulipa::EventLoop& loop_;
  LoopHubs& hubs_;
  std::size_t index_;
  std::string guest_prefix_;
  std::deque<std::pair<std::size_t, Message>> outbox_;  // (loop, message) whose box was full
  tulipa::TimerHandle retry_;
  bool retrying_ = false;
};

}  // namespace chat
