#include "redis_bus.hpp"

#include <algorithm>
#include <charconv>
#include <exception>
#include <utility>
#include <vector>

#include "tulipa/combinators.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/timeout.hpp"

namespace chat {
namespace redis = tulipa::redis;

namespace {

tulipa::Coro<long long> publish_one(redis::Client& client, std::string channel, std::string payload) {
  co_return co_await client.publish(channel, payload);
}

tulipa::Coro<void> wait_event(tulipa::Event& e) { co_await e.wait(); }

bool number(std::string_view& in, std::uint64_t& out) {
  std::size_t space = in.find(' ');
  if (space == std::string_view::npos) return false;
  auto [end, ec] = std::from_chars(in.data(), in.data() + space, out);
  if (ec != std::errc() || end != in.data() + space) return false;
  in.remove_prefix(space + 1);
  return true;
}

// The URL's options; a command that gets no answer for 5 s (a Redis that hangs) fails, unless the URL says
// otherwise, so that the publisher tries again rather than wait for ever.
redis::Options options(std::string_view url) {
  redis::Options o = redis::Options::from_url(url);
  if (o.command_timeout == tulipa::Duration::zero()) o.command_timeout = std::chrono::seconds(5);
  if (o.client_name.empty()) o.client_name = "tulipa-chat";
  return o;
}

}  // namespace

RedisBus::RedisBus(tulipa::EventLoop& loop, Hub& hub, std::string_view url, std::string channel)
    : loop_(loop),
      hub_(hub),
      channel_(std::move(channel)),
      client_(loop, options(url)),
      subscriber_(client_.subscriber()) {}

RedisBus::~RedisBus() {
  if (listener_) listener_->cancel();
  if (publisher_) publisher_->cancel();
}

std::string RedisBus::encode(const Message& m) {
  std::string out = std::to_string(m.id) + ' ' + std::to_string(m.seq) + ' ' + std::to_string(m.time_ms) + ' ' +
                    (m.action ? '1' : '0') + ' ' + m.room + ' ' + m.nick + '\n';
  out += m.text;
  return out;
}

std::optional<Message> RedisBus::decode(std::string_view in) {
  Message m;
  std::uint64_t time = 0, action = 0;
  if (!number(in, m.id) || !number(in, m.seq) || !number(in, time) || !number(in, action) || action > 1) {
    return std::nullopt;
  }
  std::size_t space = in.find(' ');
  std::size_t newline = in.find('\n');
  if (space == std::string_view::npos || newline == std::string_view::npos || space > newline || space == 0 ||
      newline == space + 1 || m.id == 0 || m.seq == 0) {
    return std::nullopt;
  }
  m.time_ms = static_cast<std::int64_t>(time);
  m.action = action == 1;
  m.room = std::string(in.substr(0, space));
  m.nick = std::string(in.substr(space + 1, newline - space - 1));
  m.text = std::string(in.substr(newline + 1));
  if (m.nick.find(' ') != std::string::npos || m.text.find('\n') != std::string::npos) return std::nullopt;
  return m;
}

tulipa::Coro<void> RedisBus::start() {
  co_await subscriber_.subscribe(channel_);
  listener_ = tulipa::create_task(loop_, listen(), "redis bus listener");
  publisher_ = tulipa::create_task(loop_, publisher(), "redis bus publisher");
}

void RedisBus::publish(const Message& m) {
  if (outbox_.size() >= max_outbox) {
    outbox_.pop_front();  // the receivers read it from the store at the room's next message
  }
  outbox_.push_back(encode(m));
  drained_.clear();
  wake_.set();
}

tulipa::Coro<void> RedisBus::listen() {
  for (;;) {
    redis::Message m = co_await subscriber_.next();
    if (m.kind == redis::Message::Kind::gap) {
      Hub::log_to_stderr("redis: subscribed again after a lost connection (" + m.payload +
                         "): reading what was missed from the store");
      hub_.resync();
      continue;
    }
    if (std::optional<Message> msg = decode(m.payload)) {
      hub_.deliver(std::move(*msg));
    } else {
      Hub::log_to_stderr("redis: ignored a malformed message on " + m.channel);
    }
  }
}

tulipa::Coro<void> RedisBus::publisher() {
  constexpr std::size_t batch_max = 256;
  tulipa::Duration backoff = std::chrono::milliseconds(50);
  bool failing = false;
  for (;;) {
    if (outbox_.empty()) {
      drained_.set();
      wake_.clear();
      co_await wake_.wait();
      continue;
    }
    // A batch leaves pipelined (one write for all); it stays in the outbox until Redis took all of it, and is sent
    // again (duplicates are dropped by the receivers) when it did not.
    std::size_t n = std::min(outbox_.size(), batch_max);
    std::vector<tulipa::Coro<long long>> sends;
    sends.reserve(n);
    for (std::size_t i = 0; i < n; ++i) sends.push_back(publish_one(client_, channel_, outbox_[i]));
    try {
      co_await tulipa::gather(std::move(sends));
      outbox_.erase(outbox_.begin(), outbox_.begin() + static_cast<std::ptrdiff_t>(std::min(n, outbox_.size())));
      if (failing) Hub::log_to_stderr("redis: publishing again");
      failing = false;
      backoff = std::chrono::milliseconds(50);
      continue;
    } catch (const tulipa::CancelledError&) {
      throw;
    } catch (const std::exception& e) {
      if (!failing) {
        Hub::log_to_stderr(std::string("redis: cannot publish (") + e.what() +
                           "); keeping the messages until it answers");
      }
      failing = true;
    }
    co_await tulipa::sleep(backoff);
    backoff = std::min<tulipa::Duration>(backoff * 2, std::chrono::seconds(2));
  }
}

tulipa::Coro<void> RedisBus::stop(tulipa::Duration grace) {
  if (!outbox_.empty()) {
    try {
      co_await tulipa::wait_for(wait_event(drained_), grace);
    } catch (const tulipa::TimeoutError&) {
      Hub::log_to_stderr("redis: " + std::to_string(outbox_.size()) +
                         " messages not published at exit (they are stored)");
    }
  }
  for (auto* task : {&listener_, &publisher_}) {
    if (!*task) continue;
    (*task)->cancel();
    try {
      co_await **task;
    } catch (const tulipa::CancelledError&) {
    } catch (const std::exception& e) {
      Hub::log_to_stderr(std::string("redis: ") + e.what());
    }
    task->reset();
  }
  subscriber_.close();
}

}  // namespace chat
