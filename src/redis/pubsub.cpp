// Subscriber: a connection of its own whose push frames become a stream of messages; reconnects with backoff and
// jitter, restores every subscription and reports the gap (pubsub.hpp).
#include "tulipa/redis/pubsub.hpp"

#include <algorithm>
#include <deque>
#include <ostream>
#include <random>
#include <set>

#include "core.hpp"

namespace tulipa::redis {

namespace detail {

class SubscriberState final : public CoreListener {
 public:
  SubscriberState(EventLoop& loop, Options o)
      : options(make_options(std::move(o))), core(loop, options), rng(std::random_device{}()) {
    core.set_listener(this);
    backoff = options->reconnect_min;
  }
  ~SubscriberState() {
    close();
    if (waiter) waiter->orphan();
  }

  static std::shared_ptr<const Options> make_options(Options o) {
    o.protocol = 3;
    return std::make_shared<const Options>(std::move(o));
  }

  enum class Kind : std::uint8_t { channel, pattern, shard };
  std::set<std::string>& names(Kind k) {
    return k == Kind::channel ? channels : k == Kind::pattern ? patterns : shards;
  }

  Coro<void> change(Kind kind, bool subscribe, std::vector<std::string> list) {
    if (closed) throw ConnectionError("redis: subscriber closed");
    static constexpr const char* sub[] = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"};
    static constexpr const char* unsub[] = {"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"};
    auto& set = names(kind);
    if (!subscribe && list.empty()) list.assign(set.begin(), set.end());
    if (list.empty()) co_return;
    // Remembered from now on, so that a reconnection in the meantime restores it (or does not).
    for (const auto& n : list) {
      if (subscribe)
        set.insert(n);
      else
        set.erase(n);
    }
    // Made by a plain function, not in the co_await's operand: g++ 12 copies a by-value temporary there bitwise
    // and destroys it twice (the vector of arguments).
    co_await confirmation(subscribe ? sub[static_cast<int>(kind)] : unsub[static_cast<int>(kind)], list);
  }

  Command<Ok, 0> confirmation(const char* command, const std::vector<std::string>& list) {
    std::vector<Arg> args{Arg(command)};
    for (const auto& n : list) args.emplace_back(n);
    SubmitOptions o;
    o.pushes = static_cast<std::uint32_t>(list.size());
    return Command<Ok, 0>(&core, {std::move(args)}, Ok{}, o);
  }

  void on_push(const char* frame, std::size_t size) override {
    RespReader r(frame, size);
    RespHeader h = r.next_value();
    if (h.count < 3) return;
    std::string_view kind = r.next_value().text;
    Message m;
    if (kind == "message" || kind == "smessage") {
      if (h.count != 3) return;
      m.kind = kind == "message" ? Message::Kind::message : Message::Kind::smessage;
    } else if (kind == "pmessage") {
      if (h.count != 4) return;
      m.kind = Message::Kind::pmessage;
      m.pattern = r.next_value().text;
    } else {
      return;  // a confirmation nobody waits for (a restored subscription), an invalidation, ...
    }
    m.channel = r.next_value().text;
    m.payload = r.next_value().text;
    push(std::move(m));
  }

  void on_ready() override {
    backoff = options->reconnect_min;
    if (!lost) return;
    lost = false;
    ++reconnects;
    restore(Kind::channel, "SUBSCRIBE");
    restore(Kind::pattern, "PSUBSCRIBE");
    restore(Kind::shard, "SSUBSCRIBE");
    Message gap;
    gap.kind = Message::Kind::gap;
    gap.payload = lost_reason;
    push(std::move(gap));
  }

  void on_down(const std::string& why) override {
    if (closed) return;
    if (!lost) {
      lost = true;
      lost_reason = why;
    }
    // Full jitter over the upper half: many subscribers cut off together do not come back together.
    auto hi = std::max<Duration::rep>(backoff.count(), 1);
    std::uniform_int_distribution<Duration::rep> pick(hi / 2, hi);
    Duration delay(pick(rng));
    backoff = std::min<Duration>(backoff * 2, options->reconnect_max);
    reconnect_timer = core.loop().call_later(delay, [this] { core.connect(); });
  }

  void restore(Kind kind, const char* command) {
    auto& set = names(kind);
    if (set.empty()) return;
    std::vector<Arg> args{Arg(command)};
    for (const auto& n : set) args.emplace_back(n);
    SubmitOptions o;
    o.pushes = static_cast<std::uint32_t>(set.size());
    core.submit(nullptr, args, o);  // nobody waits: the confirmations are consumed in order
  }

  void push(Message m) {
    queued_bytes += m.channel.size() + m.pattern.size() + m.payload.size() + sizeof(Message);
    queue.push_back(std::move(m));
    if (queued_bytes > options->subscriber_buffer) core.pause_reading();
    if (waiter) waiter->wake();
  }

  Message pop() {
    Message m = std::move(queue.front());
    queue.pop_front();
    queued_bytes -= m.channel.size() + m.pattern.size() + m.payload.size() + sizeof(Message);
    if (queued_bytes <= options->subscriber_buffer / 2) core.resume_reading();
    return m;
  }

  void close() noexcept {
    if (closed) return;
    closed = true;
    reconnect_timer.cancel();
    core.close("redis: subscriber closed", true);
    if (waiter) waiter->wake();
  }

  std::shared_ptr<const Options> options;
  Core core;
  std::set<std::string> channels, patterns, shards;
  std::deque<Message> queue;
  std::size_t queued_bytes = 0;
  Subscriber::Next* waiter = nullptr;
  bool closed = false;
  bool lost = false;
  std::string lost_reason;
  Duration backoff;
  TimerHandle reconnect_timer;
  std::uint64_t reconnects = 0;
  std::minstd_rand rng;
};

}  // namespace detail

Subscriber::Subscriber(EventLoop& loop, Options options)
    : s_(std::make_unique<detail::SubscriberState>(loop, std::move(options))) {}
Subscriber::Subscriber(Subscriber&&) noexcept = default;
Subscriber& Subscriber::operator=(Subscriber&&) noexcept = default;
Subscriber::~Subscriber() = default;

Coro<void> Subscriber::change(int kind, bool subscribe, std::vector<std::string> names) {
  return s_->change(static_cast<detail::SubscriberState::Kind>(kind), subscribe, std::move(names));
}

Subscriber::Next Subscriber::next() noexcept { return Next(s_.get()); }
std::size_t Subscriber::pending() const noexcept { return s_->queue.size(); }
std::uint64_t Subscriber::reconnects() const noexcept { return s_->reconnects; }
bool Subscriber::connected() const noexcept { return s_->core.state() == detail::Core::State::ready; }
void Subscriber::close() noexcept { s_->close(); }
detail::Core* Subscriber::core_for_commands() noexcept { return &s_->core; }

Subscriber::Next::~Next() {
  if (waiting_ && s_ && s_->waiter == this) s_->waiter = nullptr;
}

bool Subscriber::Next::await_ready() const noexcept { return !s_ || !s_->queue.empty() || s_->closed; }

bool Subscriber::Next::await_suspend(std::coroutine_handle<> h) {
  if (s_->waiter) throw std::logic_error("redis: two tasks wait in Subscriber::next() at once");
  if (!park(h)) return false;
  s_->waiter = this;
  waiting_ = true;
  return true;
}

Message Subscriber::Next::await_resume() {
  if (waiting_ && s_ && s_->waiter == this) s_->waiter = nullptr;
  waiting_ = false;
  check_cancelled();
  if (!s_ || s_->queue.empty()) throw ConnectionError("redis: subscriber closed");
  return s_->pop();
}

void Subscriber::Next::describe(std::ostream& os) const { os << "redis Subscriber.next()"; }

Suspension::Cancel Subscriber::Next::on_cancel() noexcept {
  if (s_ && s_->waiter == this) s_->waiter = nullptr;
  waiting_ = false;
  return Cancel::detached;
}

}  // namespace tulipa::redis
