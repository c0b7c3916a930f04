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
// On the wire: one message per publish, "id seq time_ms action room nick\ntext" (the text is sanitised, with no
// newline; room and nick have no spaces).
//
// Threads: the loop's thread. Lifetime: start() before serving, stop() (awaited) before the hub goes.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "core/bus.hpp"
#include "core/hub.hpp"
#include "tulipa/redis/client.hpp"
#include "tulipa/redis/pubsub.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"

namespace chat {

class RedisBus final : public Bus {
 public:
  // `url`: redis://[[user]:password@]host[:port][/db] (tulipa::redis::Options::from_url; std::invalid_argument).
  RedisBus(tulipa::EventLoop& loop, Hub& hub, std::string_view url, std::string channel = "tulipa-chat:messages");
  ~RedisBus() override;
  RedisBus(const RedisBus&) = delete;
  RedisBus& operator=(const RedisBus&) = delete;

  // Subscribes (returns once Redis confirmed) and starts listening and publishing. Throws
  // tulipa::redis::ConnectionError when Redis cannot be reached.
  tulipa::Coro<void> start();
  // Sends what is still waiting (for at most `grace`), then stops listening.
  tulipa::Coro<void> stop(tulipa::Duration grace);

  void publish(const Message& m) override;

  std::size_t max_outbox = 100000;
  // Messages not published yet (Redis away, or this pass's).
  std::size_t outbox() const noexcept { return outbox_.size(); }

  static std::string encode(const Message& m);
  // nullopt when `payload` is not what encode() makes.
  static std::optional<Message> decode(std::string_view payload);

 private:
  tulipa::Coro<void> listen();
  tulipa::Coro<void> publisher();

  tulipa::EventLoop& loop_;
  Hub& hub_;
  std::string channel_;
  tulipa::redis::Client client_;
  tulipa::redis::Subscriber subscriber_;
  std::deque<std::string> outbox_;
  tulipa::Event wake_;     // the outbox has something
  tulipa::Event drained_;  // the outbox emptied
  std::optional<tulipa::Task<void>> listener_, publisher_;
};

}  // namespace chat
