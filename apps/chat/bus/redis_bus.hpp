// Scale-out through Redis pub/sub (`--redis redis://...`): several instances of tulipa-chat sharing one store
// (PostgreSQL) share their rooms. Each instance publishes every message it stored on one channel and hands what the
// others published to Hub::deliver; the hub puts each room in seq order, drops what it delivered already, and reads
// a gap back from the shared store (core/bus.hpp, Hub::deliver). So Redis only has to be fast, not reliable:
// - a publish that fails (Redis away) is kept and sent again, in order, once Redis answers (at most
//   `max_outbox` messages are kept; the oldest then go, and the receivers read them from the store when the next
//   message of their room shows the gap);
// - when the subscriber's connection was lost, tulipa::redis reconnects and resubscribes by itself and reports a
//   gap (pub/sub is at-most-once); the bus then calls Hub::resync, which reads every room's missed messages from
//   the store. Meanwhile the instance keeps serving its own clients.
//
// Nicks and private messages (core/directory.hpp): each instance is numbered at start (INCR tulipa-chat:instances)
// and keeps tulipa-chat:instance:N alive (PX `liveness`, refreshed every third of it). A nick is claimed by setting
// tulipa-chat:nick:NICK to N, in a script that refuses when the key names another instance that is alive, so an
// instance that dies (kill -9) frees its nicks when its key expires, and one that stops cleanly frees them at once
// (it deletes its key). A private message to a nick of another instance is published on tulipa-chat:to:N of the
// instance holding it (looked up and published in one script: PUBLISH's count says whether it was taken); a guest's
// name holds its instance's number (guest-N-...), so guests need no claim. When the refresh finds the instance's key
// gone (Redis restarted empty, or was away longer than `liveness`), the instance claims its nicks again; one that
// another instance took meanwhile becomes a guest here (Hub::nick_lost). While Redis is away, /nick answers that the
// nick cannot be checked, and private messages to other instances fail with that reason.
//
// --loops N with --redis: each loop is an instance of its own for Redis (its own number, client, subscriber and
// liveness key), and the loops of one process also share their rooms in-process (the SQLite writer's hand-over or
// the loop bus, bus/loop_bus.hpp). One order per room and no duplicate hold for each hub whatever the paths: a room
// message is delivered by its seq, once, and one heard through both paths (a sibling loop's, in-process and then
// through Redis) is dropped the second time. A subscriber per loop rather than per process: each loop hears the
// other instances from Redis directly, with no forwarding hop through one loop that would then decode everyone's
// messages for all, and a lost connection is one loop's gap (Hub::resync) rather than one to relay to every loop;
// nicks and private messages need no second, in-process directory level either (a nick is claimed for the loop
// that holds it; a private message is published on that loop's channel). The cost: Redis sends each message once
// per loop, and a loop drops its siblings' copies.
//
// On the wire: one message per publish, "id seq time_ms action room nick\ntext" (the text is sanitised, with no
// newline; room and nick have no spaces); a private message "id 0 time_ms action to nick\ntext".
//
// Threads: the loop's thread. Lifetime: start() before serving, stop() (awaited) before the hub goes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "core/bus.hpp"
#include "core/directory.hpp"
#include "core/hub.hpp"
#include "tulipa/redis/client.hpp"
#include "tulipa/redis/pubsub.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"

namespace chat {

class RedisBus final : public Bus, public Directory {
 public:
  // `url`: redis://[[user]:password@]host[:port][/db] (tulipa::redis::Options::from_url; std::invalid_argument).
  // `liveness`: how long this instance's nicks stay claimed after it stopped refreshing them (it died).
  RedisBus(tulipa::EventLoop& loop, Hub& hub, std::string_view url,
           std::chrono::milliseconds liveness = std::chrono::seconds(10), std::string prefix = "tulipa-chat:");
  ~RedisBus() override;
  RedisBus(const RedisBus&) = delete;
  RedisBus& operator=(const RedisBus&) = delete;

  // Numbers the instance, subscribes (returns once Redis confirmed) and starts listening, publishing and keeping
  // the instance alive. Throws tulipa::redis::ConnectionError when Redis cannot be reached.
  tulipa::Coro<void> start();
  // Sends what is still waiting (for at most `grace`), frees the instance's nicks, then stops listening.
  tulipa::Coro<void> stop(tulipa::Duration grace);

  void publish(const Message& m) override;

  std::string_view guest_prefix() const override { return guest_prefix_; }
  void claim(std::string key, Done done) override;
  void release(std::string key) override;
  void route(const Message& m, Done done) override;

  std::size_t max_outbox = 100000;
  // Messages not published yet (Redis away, or this pass's).
  std::size_t outbox() const noexcept { return outbox_.size(); }

  // A room message, or a private one (`to` set).
  static std::string encode(const Message& m);
  // nullopt when `payload` is not what encode() makes of a room message (`is_private` false: the messages channel)
  // or of a private one (true: an instance's own channel).
  static std::optional<Message> decode(std::string_view payload, bool is_private = false);

 private:
  struct Request {
    enum class Kind : std::uint8_t { claim, release, route } kind;
    std::string key;  // the folded nick
    std::string payload;
    Done done;
  };
  tulipa::Coro<void> listen();
  tulipa::Coro<void> publisher();
  tulipa::Coro<void> directory();
  tulipa::Coro<void> keep_alive();
  tulipa::Coro<bool> answer(const Request& r);
  void ask(Request r);

  tulipa::EventLoop& loop_;
  Hub& hub_;
  std::chrono::milliseconds liveness_;
  std::string prefix_;  // of every key and channel
  std::string channel_;
  std::string instance_;      // this instance's number
  std::string guest_prefix_;  // "guest-<instance>-"
  tulipa::redis::Client client_;
  tulipa::redis::Subscriber subscriber_;
  std::deque<std::string> outbox_;
  tulipa::Event wake_;            // the outbox has something
  tulipa::Event drained_;         // the outbox emptied
  std::deque<Request> requests_;  // for directory()
  tulipa::Event asked_;
  std::optional<tulipa::Task<void>> listener_, publisher_, directory_, keeper_;
};

}  // namespace chat
