// Redis pub/sub as an async stream of messages.
//
//   redis::Subscriber sub = client.subscriber();          // a connection of its own (RESP3)
//   co_await sub.subscribe({"chat:lobby"});               // returns once the server confirmed
//   co_await sub.psubscribe({"chat:room:*"});
//   for (;;) {
//     redis::Message m = co_await sub.next();
//     if (m.kind == redis::Message::Kind::gap) { /* reconnected: messages were lost, resync if it matters */ }
//     else handle(m.channel, m.payload);
//   }
//   // elsewhere: co_await client.publish("chat:lobby", "hi");
//
// Delivery: messages come in the order the server sent them. They arrive as RESP3 push frames on the subscriber's
// connection, which can also run ordinary commands (co_await sub.ping(), sub.command(...)): a push frame never
// takes the place of a command's reply, and replies never enter the message stream.
//
// Reconnection: when the connection is lost the subscriber reconnects by itself, with exponential backoff and
// jitter (Options::reconnect_min .. reconnect_max), restores every channel, pattern and shard channel it was
// subscribed to, and then puts a Message of kind `gap` into the stream (payload: why the connection was lost).
// REDIS PUB/SUB IS AT-MOST-ONCE: messages published while the subscriber was disconnected are lost, and the
// server does not say which. The gap message is where that happened; a consumer that cannot lose messages must
// resynchronise there (or use streams: XADD / XREAD). Commands in flight when the connection is lost fail with
// ConnectionError; subscribe() calls in flight still take effect after the reconnection.
//
// Flow control: undelivered messages are buffered up to Options::subscriber_buffer bytes; beyond that the
// subscriber stops reading its socket until next() catches up (the server then buffers, up to its
// client-output-buffer-limit for pubsub, after which it drops the connection: a gap).
//
// Lifetimes: loop thread only; one task at a time may wait in next() (std::logic_error for a second). Destroying the
// subscriber (or close()) ends the stream: a waiting next() throws ConnectionError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tulipa/coro.hpp"
#include "tulipa/redis/client.hpp"

namespace tulipa::redis {

struct Message {
  enum class Kind : std::uint8_t { message, pmessage, smessage, gap };
  Kind kind = Kind::message;
  std::string channel{};  // the channel it was published to
  std::string pattern{};  // pmessage: the pattern that matched
  std::string payload{};  // the message; for a gap: why the connection was lost
};

namespace detail {
class SubscriberState;
}

class Subscriber : public Commands<Subscriber> {
 public:
  // Usually made by Client::subscriber(). Forces protocol 3 (pub/sub on a RESP2 connection allows no commands).
  Subscriber(EventLoop& loop, Options options);
  Subscriber(Subscriber&&) noexcept;
  Subscriber& operator=(Subscriber&&) noexcept;
  ~Subscriber();

  // Each returns once the server confirmed every name (or throws ServerError / ConnectionError). Subscribing is
  // idempotent; names are remembered for reconnections from the moment of the call (a subscribe() that fails with
  // ConnectionError because the connection was lost still takes effect once it is back). Names are strings, given
  // one by one or as a span (not a braced list: g++ 12 cannot keep one in a co_await's operand; docs/coroutines.md).
  template <class... N>
  Coro<void> subscribe(const N&... channels) {
    return change(0, true, {std::string(std::string_view(channels))...});
  }
  template <class... N>
  Coro<void> psubscribe(const N&... patterns) {
    return change(1, true, {std::string(std::string_view(patterns))...});
  }
  // Sharded pub/sub (Redis 7).
  template <class... N>
  Coro<void> ssubscribe(const N&... channels) {
    return change(2, true, {std::string(std::string_view(channels))...});
  }
  // No names: all of that kind.
  template <class... N>
  Coro<void> unsubscribe(const N&... channels) {
    return change(0, false, {std::string(std::string_view(channels))...});
  }
  template <class... N>
  Coro<void> punsubscribe(const N&... patterns) {
    return change(1, false, {std::string(std::string_view(patterns))...});
  }
  template <class... N>
  Coro<void> sunsubscribe(const N&... channels) {
    return change(2, false, {std::string(std::string_view(channels))...});
  }
  Coro<void> subscribe(std::span<const std::string> channels) {
    return change(0, true, {channels.begin(), channels.end()});
  }
  Coro<void> psubscribe(std::span<const std::string> patterns) {
    return change(1, true, {patterns.begin(), patterns.end()});
  }

  class [[nodiscard]] Next final : public Suspension {
   public:
    explicit Next(detail::SubscriberState* s) noexcept : s_(s) {}
    Next(Next&& o) noexcept : Suspension(), s_(o.s_) {}
    ~Next();
    bool await_ready() const noexcept;
    bool await_suspend(std::coroutine_handle<> h);
    Message await_resume();
    void describe(std::ostream& os) const override;
    using Suspension::wake;

   private:
    friend class detail::SubscriberState;
    Cancel on_cancel() noexcept override;
    // The subscriber went away while this waited: resume, and throw ConnectionError.
    void orphan() noexcept {
      s_ = nullptr;
      wake();
    }
    detail::SubscriberState* s_;
    bool waiting_ = false;
  };
  // The next message (or gap). Throws ConnectionError once the subscriber is closed.
  Next next() noexcept;
  // Messages buffered, not yet taken by next().
  std::size_t pending() const noexcept;
  // How many times the connection was re-established after a loss.
  std::uint64_t reconnects() const noexcept;
  bool connected() const noexcept;
  void close() noexcept;

  detail::Core* core_for_commands() noexcept;

 private:
  // kind: 0 channels, 1 patterns, 2 shard channels.
  Coro<void> change(int kind, bool subscribe, std::vector<std::string> names);
  std::unique_ptr<detail::SubscriberState> s_;
};

}  // namespace tulipa::redis
