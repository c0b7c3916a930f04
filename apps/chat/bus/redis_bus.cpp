#include "redis_bus.hpp"

#include <algorithm>
#include <charconv>
#include <exception>
#include <utility>
#include <vector>

#include "core/text.hpp"
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

tulipa::Coro<long long> del_one(redis::Client& client, std::string key) { co_return co_await client.del(key); }

bool number(std::string_view& in, std::uint64_t& out) {
  std::size_t space = in.find(' ');
  if (space == std::string_view::npos) return false;
  auto [end, ec] = std::from_chars(in.data(), in.data() + space, out);
  if (ec != std::errc() || end != in.data() + space) return false;
  in.remove_prefix(space + 1);
  return true;
}

// KEYS[1] the nick's key; ARGV[1] this instance; ARGV[2] the instance keys' prefix. Refuses when a live instance
// other than this one holds the nick.
constexpr const char* claim_script = R"(local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. v) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1)";
// Deletes the nick's key only while it names this instance.
constexpr const char* release_script = R"(if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0)";
// ARGV[1] the instance keys' prefix, ARGV[2] the private channels' prefix, ARGV[3] the payload: publishes to the
// live instance holding the nick; the number of receivers (0: nobody holds it).
constexpr const char* route_script = R"(local v = redis.call('GET', KEYS[1])
if not v or redis.call('EXISTS', ARGV[1] .. v) == 0 then return 0 end
return redis.call('PUBLISH', ARGV[2] .. v, ARGV[3]))";
// Refreshes the instance's key; 1 when it was still there (0: its nicks must be claimed again).
constexpr const char* alive_script = R"(local had = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return had)";

// The URL's options; a command that gets no answer for 5 s (a Redis that hangs) fails, unless the URL says
// otherwise, so that the publisher tries again rather than wait for ever.
redis::Options options(std::string_view url) {
  redis::Options o = redis::Options::from_url(url);
  if (o.command_timeout == tulipa::Duration::zero()) o.command_timeout = std::chrono::seconds(5);
  if (o.client_name.empty()) o.client_name = "tulipa-chat";
  return o;
}

}  // namespace

RedisBus::RedisBus(tulipa::EventLoop& loop, Hub& hub, std::string_view url, std::chrono::milliseconds liveness,
                   std::string prefix)
    : loop_(loop),
      hub_(hub),
      liveness_(liveness),
      prefix_(std::move(prefix)),
      channel_(prefix_ + "messages"),
      client_(loop, options(url)),
      subscriber_(client_.subscriber()) {}

RedisBus::~RedisBus() {
  for (auto* task : {&listener_, &publisher_, &directory_, &keeper_}) {
    if (*task) (*task)->cancel();
  }
}

std::string RedisBus::encode(const Message& m) {
  std::string out = std::to_string(m.id) + ' ' + std::to_string(m.to.empty() ? m.seq : 0) + ' ' +
                    std::to_string(m.time_ms) + ' ' + (m.action ? '1' : '0') + ' ' + (m.to.empty() ? m.room : m.to) +
                    ' ' + m.nick + '\n';
  out += m.text;
  return out;
}

std::optional<Message> RedisBus::decode(std::string_view in, bool is_private) {
  Message m;
  std::uint64_t time = 0, action = 0;
  if (!number(in, m.id) || !number(in, m.seq) || !number(in, time) || !number(in, action) || action > 1) {
    return std::nullopt;
  }
  std::size_t space = in.find(' ');
  std::size_t newline = in.find('\n');
  if (space == std::string_view::npos || newline == std::string_view::npos || space > newline || space == 0 ||
      newline == space + 1 || m.id == 0 || (m.seq == 0) != is_private) {
    return std::nullopt;
  }
  m.time_ms = static_cast<std::int64_t>(time);
  m.action = action == 1;
  (is_private ? m.to : m.room) = std::string(in.substr(0, space));
  m.nick = std::string(in.substr(space + 1, newline - space - 1));
  m.text = std::string(in.substr(newline + 1));
  if (m.nick.find(' ') != std::string::npos || m.text.find('\n') != std::string::npos) return std::nullopt;
  return m;
}

tulipa::Coro<void> RedisBus::start() {
  std::string counter = prefix_ + "instances";
  long long number = co_await client_.incr(counter);
  instance_ = std::to_string(number);
  guest_prefix_ = "guest-" + instance_ + "-";
  std::string key = prefix_ + "instance:" + instance_;
  long long ms = liveness_.count();
  (void)co_await client_.command_as<long long>("EVAL", alive_script, "1", key, ms);
  std::string own = prefix_ + "to:" + instance_;
  co_await subscriber_.subscribe(channel_, own);
  listener_ = tulipa::create_task(loop_, listen(), "redis bus listener");
  publisher_ = tulipa::create_task(loop_, publisher(), "redis bus publisher");
  directory_ = tulipa::create_task(loop_, directory(), "redis bus directory");
  keeper_ = tulipa::create_task(loop_, keep_alive(), "redis bus liveness");
}

void RedisBus::claim(std::string key, Done done) { ask({Request::Kind::claim, std::move(key), {}, std::move(done)}); }

void RedisBus::release(std::string key) { ask({Request::Kind::release, std::move(key), {}, nullptr}); }

void RedisBus::route(const Message& m, Done done) {
  ask({Request::Kind::route, fold(m.to), encode(m), std::move(done)});
}

void RedisBus::ask(Request r) {
  requests_.push_back(std::move(r));
  asked_.set();
}

// One request at a time, in order (a release before the claim that follows it).
tulipa::Coro<void> RedisBus::directory() {
  for (;;) {
    if (requests_.empty()) {
      asked_.clear();
      co_await asked_.wait();
      continue;
    }
    Request r = std::move(requests_.front());
    requests_.pop_front();
    bool ok = false;
    std::string error;
    try {
      ok = co_await answer(r);
    } catch (const tulipa::CancelledError&) {
      throw;
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "Redis is away";
    }
    if (r.done) r.done(ok, std::move(error));
  }
}

tulipa::Coro<bool> RedisBus::answer(const Request& r) {
  std::string nick_key = prefix_ + "nick:" + r.key;
  std::string instances = prefix_ + "instance:";
  switch (r.kind) {
    case Request::Kind::claim:
      co_return co_await client_.command_as<long long>("EVAL", claim_script, "1", nick_key, instance_, instances) == 1;
    case Request::Kind::release:
      (void)co_await client_.command_as<long long>("EVAL", release_script, "1", nick_key, instance_);
      co_return true;
    case Request::Kind::route:
      break;
  }
  std::string channels = prefix_ + "to:";
  if (r.key.starts_with("guest-")) {
    // guest-N-M: instance N's guest.
    std::string_view rest = std::string_view(r.key).substr(6);
    std::string channel = channels + std::string(rest.substr(0, rest.find('-')));
    co_return co_await client_.publish(channel, r.payload) > 0;
  }
  co_return co_await client_.command_as<long long>("EVAL", route_script, "1", nick_key, instances, channels,
                                                   r.payload) > 0;
}

// Refreshes the instance's key every third of `liveness`; claims the nicks again when Redis had lost it.
tulipa::Coro<void> RedisBus::keep_alive() {
  std::string key = prefix_ + "instance:" + instance_;
  std::string nick_prefix = prefix_ + "nick:";
  std::string instances = prefix_ + "instance:";
  long long ms = liveness_.count();
  bool failing = false;
  for (;;) {
    co_await tulipa::sleep(liveness_ / 3);
    try {
      long long had = co_await client_.command_as<long long>("EVAL", alive_script, "1", key, ms);
      if (failing) Hub::log_to_stderr("redis: the instance is alive again");
      failing = false;
      if (had == 1) continue;
      std::vector<std::string> nicks = hub_.claimed_nicks();
      Hub::log_to_stderr("redis: the instance's key was gone: claiming its " + std::to_string(nicks.size()) +
                         " nicks again");
      for (const std::string& nick : nicks) {
        std::string nick_key = nick_prefix + nick;
        long long ok =
            co_await client_.command_as<long long>("EVAL", claim_script, "1", nick_key, instance_, instances);
        if (ok != 1) hub_.nick_lost(nick);
      }
    } catch (const tulipa::CancelledError&) {
      throw;
    } catch (const std::exception& e) {
      if (!failing) Hub::log_to_stderr(std::string("redis: cannot keep the instance alive (") + e.what() + ")");
      failing = true;
    }
  }
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
    if (std::optional<Message> msg = decode(m.payload, m.channel != channel_)) {
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
  // Its nicks are free at once (the keys that name them are claimed over by whoever asks).
  try {
    std::string key = prefix_ + "instance:" + instance_;
    tulipa::Coro<long long> deleting = del_one(client_, std::move(key));
    (void)co_await tulipa::wait_for(std::move(deleting), grace);
  } catch (const tulipa::CancelledError&) {
    throw;
  } catch (const std::exception& e) {
    Hub::log_to_stderr(std::string("redis: the instance's nicks stay claimed until its key expires (") + e.what() +
                       ")");
  }
  for (auto* task : {&listener_, &publisher_, &directory_, &keeper_}) {
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
