// One Redis connection: see core.hpp.
#include "core.hpp"

#include <strings.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "tulipa/cancel.hpp"
#include "tulipa/tls_net.hpp"

namespace tulipa::redis::detail {

// The transport's protocol: forwards to the Core while attached (the Core detaches it when it lets go).
class RespProtocol final : public Protocol {
 public:
  explicit RespProtocol(Core* c) noexcept : core(c) {}
  ~RespProtocol() override {
    if (core) core->on_protocol_gone(this);
  }
  void connection_made(Transport& t) override {
    if (core) core->on_made(this, t);
  }
  void data_received(std::span<const std::byte> data) override {
    if (core) core->on_data(data);
  }
  bool eof_received() override { return false; }
  void connection_lost(std::exception_ptr e) override {
    if (Core* c = std::exchange(core, nullptr)) c->on_lost(std::move(e));
  }
  Core* core;
};

namespace {
long long millis(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

bool is(const Arg& a, const char* name) {
  char buf[32];
  std::string_view t = a.text(buf);
  return t.size() == std::strlen(name) && strncasecmp(t.data(), name, t.size()) == 0;
}
}  // namespace

Core::Core(EventLoop& loop, std::shared_ptr<const Options> options, std::uint64_t* opened_counter)
    : loop_(loop), options_(std::move(options)), opened_counter_(opened_counter), ring_(16) {}

Core::~Core() {
  listener_ = nullptr;
  close("redis: client closed", true);
  flush_handle_.cancel();
}

std::string Core::where() const { return options_->host + ":" + std::to_string(options_->port); }

std::uint64_t Core::submit(ReplySink* sink, std::span<const Arg> args, SubmitOptions o) noexcept {
  if (state_ == State::closed) {
    if (sink) sink->fail(std::make_exception_ptr(ConnectionError("redis: client closed")));
    return tail_;
  }
  if (track_) track(args);
  bool was_empty = out_.empty();
  append_command(out_, args);
  if (tail_ - head_ == ring_.size()) {
    std::vector<Slot> bigger(ring_.size() * 2);
    for (std::uint64_t s = head_; s != tail_; ++s) bigger[s & (bigger.size() - 1)] = slot(s);
    ring_.swap(bigger);
  }
  TimePoint deadline = TimePoint::max();
  if (options_->command_timeout > Duration::zero() && o.block != Duration::max())
    deadline = loop_.time() + options_->command_timeout + o.block;
  slot(tail_) = Slot{sink, o.pushes, deadline};
  if (!watchdog_armed_ && deadline != TimePoint::max()) arm_watchdog(deadline);
  std::uint64_t seq = tail_++;
  if (transport_) {
    // Alone in this loop pass (nothing else queued to run, so no other command can join it): write now rather
    // than one pass later. Otherwise everything queued during the pass goes out together.
    if (was_empty && !flush_scheduled_ && loop_.ready_count() == 0)
      flush();
    else
      schedule_flush();
  } else if (state_ == State::idle) {
    start_connect();
  }
  return seq;
}

void Core::forget(std::uint64_t seq) noexcept {
  if (seq >= head_ && seq < tail_) slot(seq).sink = nullptr;
}

void Core::connect() {
  if (state_ == State::idle) start_connect();
}

void Core::start_connect() {
  state_ = State::connecting;
  scanner_.reset();
  in_.clear();
  const Options& o = *options_;
  try {
    auto factory = [this]() -> std::unique_ptr<StreamProtocol> {
      auto p = std::make_unique<RespProtocol>(this);
      protocol_ = p.get();
      return p;
    };
    auto done = [this](Transport* t, std::exception_ptr e) { on_connect_done(t, std::move(e)); };
    if (o.tls) {
      SslContext ctx = o.ssl ? *o.ssl : SslContext::client();
      SslOptions so;
      so.server_hostname = o.server_hostname.empty() ? std::string_view(o.host) : std::string_view(o.server_hostname);
      connecting_ = create_connection(loop_, factory, o.host, o.port, ctx, done, {}, so);
    } else {
      connecting_ = create_connection(loop_, factory, o.host, o.port, done);
    }
  } catch (...) {
    drop_connection(std::current_exception(), "redis: cannot connect to " + where());
    return;
  }
  if (o.connect_timeout > Duration::zero())
    connect_timer_ = loop_.call_later(o.connect_timeout, [this] { on_connect_timeout(); });
}

int Core::build_handshake(std::string& out) const {
  const Options& o = *options_;
  int n = 0;
  if (o.protocol == 3) {
    std::vector<Arg> a{Arg("HELLO"), Arg("3")};
    if (!o.password.empty()) {
      a.insert(a.end(),
               {Arg("AUTH"), Arg(o.username.empty() ? std::string_view("default") : o.username), Arg(o.password)});
    }
    if (!o.client_name.empty()) a.insert(a.end(), {Arg("SETNAME"), Arg(o.client_name)});
    append_command(out, a);
    ++n;
  } else {
    if (!o.password.empty()) {
      if (o.username.empty())
        append_command(out, std::vector<Arg>{Arg("AUTH"), Arg(o.password)});
      else
        append_command(out, std::vector<Arg>{Arg("AUTH"), Arg(o.username), Arg(o.password)});
      ++n;
    }
    if (!o.client_name.empty()) {
      append_command(out, std::vector<Arg>{Arg("CLIENT"), Arg("SETNAME"), Arg(o.client_name)});
      ++n;
    }
  }
  if (o.db != 0) {
    append_command(out, std::vector<Arg>{Arg("SELECT"), Arg(o.db)});
    ++n;
  }
  return n;
}

void Core::on_made(RespProtocol* p, Transport& t) {
  protocol_ = p;
  transport_ = &t;
  if (opened_counter_) ++*opened_counter_;
  std::string hs;
  handshake_left_ = build_handshake(hs);
  if (!hs.empty()) t.write(hs);
  if (reading_paused_) t.pause_reading();
  if (handshake_left_ == 0)
    handshake_done();
  else if (!out_.empty())
    schedule_flush();  // pipelined behind the handshake
}

void Core::on_connect_done(Transport* t, std::exception_ptr e) {
  connecting_ = ConnectHandle();
  if (!e && t) return;  // on_made did the work
  drop_connection(
      std::make_exception_ptr(ConnectionError("redis: cannot connect to " + where() + ": " + describe_exception(e))),
      "cannot connect: " + describe_exception(e));
}

void Core::handshake_done() {
  state_ = State::ready;
  connect_timer_.cancel();
  if (!out_.empty()) schedule_flush();
  if (listener_) listener_->on_ready();
}

void Core::on_connect_timeout() {
  if (state_ != State::connecting) return;
  std::string why = "redis: connecting to " + where() + " timed out after " +
                    std::to_string(millis(options_->connect_timeout)) + " ms";
  drop_connection(std::make_exception_ptr(TimeoutError(why)), why);
}

void Core::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Once per loop pass: every command queued until then goes out in one write.
  flush_handle_ = loop_.call_soon([this] { flush(); });
}

void Core::flush() {
  flush_scheduled_ = false;
  if (!transport_ || out_.empty()) return;
  transport_->write(out_);
  out_.clear();
  if (out_.capacity() > (1u << 20)) out_.shrink_to_fit();
}

void Core::on_data(std::span<const std::byte> data) {
  auto* p = reinterpret_cast<const char*>(data.data());
  if (in_.empty()) {
    parse(p, data.size(), false);
  } else {
    in_.append(p, data.size());
    parse(in_.data(), in_.size(), true);
  }
}

void Core::parse(const char* data, std::size_t size, bool own) {
  std::size_t pos = 0;
  std::uint64_t gen = generation_;
  try {
    while (pos < size) {
      std::size_t n = scanner_.scan(data + pos, size - pos);
      if (n == 0) break;
      dispatch(data + pos, n);
      if (gen != generation_) return;  // the connection was dropped: in_ is gone
      pos += n;
    }
  } catch (const ProtocolError& e) {
    drop_connection(std::current_exception(), e.what());
    return;
  }
  if (own)
    in_.erase(0, pos);
  else if (pos < size)
    in_.assign(data + pos, size - pos);
  if (!in_.empty()) {
    std::size_t want = scanner_.wanted();
    if (want > in_.capacity()) in_.reserve(want);  // a large bulk string: grow once
  } else if (in_.capacity() > 64 * 1024) {
    std::string().swap(in_);
  }
}

void Core::dispatch(const char* frame, std::size_t size) {
  RespReader peek(frame, size);
  RespHeader h = peek.next_value();
  if (h.marker == '>') {
    route_push(frame, size);
    return;
  }
  bool error = h.marker == '-' || h.marker == '!';
  if (handshake_left_ > 0) {
    if (error) {
      std::string why(h.text);
      drop_connection(std::make_exception_ptr(ServerError(h.text)), why);
      return;
    }
    if (--handshake_left_ == 0) handshake_done();
    return;
  }
  if (head_ == tail_) {
    std::string why = "redis: a reply came from " + where() + " that no command was waiting for";
    drop_connection(std::make_exception_ptr(ProtocolError(why)), why);
    return;
  }
  if (slot(head_).pushes > 0 && !error) {
    std::string why = "redis: a subscription was answered by a reply, not a push frame";
    drop_connection(std::make_exception_ptr(ProtocolError(why)), why);
    return;
  }
  if (error) {
    complete_head(nullptr, std::make_exception_ptr(ServerError(h.text)));
  } else {
    RespReader r(frame, size);
    complete_head(&r, nullptr);
  }
}

void Core::route_push(const char* frame, std::size_t size) {
  RespReader r(frame, size);
  RespHeader h = r.next_value();
  if (h.count >= 1 && head_ != tail_ && slot(head_).pushes > 0) {
    RespHeader k = r.next();
    std::string_view kind = k.text;
    if (kind == "subscribe" || kind == "psubscribe" || kind == "ssubscribe" || kind == "unsubscribe" ||
        kind == "punsubscribe" || kind == "sunsubscribe") {
      if (--slot(head_).pushes == 0) {
        RespReader whole(frame, size);
        complete_head(&whole, nullptr);
      }
      return;
    }
  }
  if (listener_) listener_->on_push(frame, size);
}

void Core::complete_head(RespReader* frame, std::exception_ptr error) {
  ReplySink* sink = slot(head_).sink;
  ++head_;
  if (!sink) return;  // its caller went away: the reply is consumed and dropped
  if (error)
    sink->fail(std::move(error));
  else
    sink->deliver(*frame);
}

void Core::fail_all(const std::exception_ptr& e) noexcept {
  while (head_ != tail_) {
    ReplySink* sink = slot(head_).sink;
    ++head_;
    if (sink) sink->fail(e);
  }
}

void Core::drop_connection(const std::exception_ptr& e, const std::string& why) noexcept {
  ++generation_;
  if (protocol_) std::exchange(protocol_, nullptr)->core = nullptr;
  if (transport_) std::exchange(transport_, nullptr)->abort();
  connecting_.cancel();
  connecting_ = ConnectHandle();
  connect_timer_.cancel();
  watchdog_.cancel();
  watchdog_armed_ = false;
  if (state_ != State::closed) state_ = State::idle;
  in_.clear();
  scanner_.reset();
  out_.clear();
  handshake_left_ = 0;
  dirty_ = in_multi_ = watching_ = false;
  fail_all(e);
  if (listener_) listener_->on_down(why);
}

void Core::close(const std::string& why, bool final) noexcept {
  if (final) state_ = State::closed;
  drop_connection(std::make_exception_ptr(ConnectionError(why)), why);
}

void Core::on_lost(std::exception_ptr e) {
  protocol_ = nullptr;  // the transport is going: nothing to abort
  transport_ = nullptr;
  std::string why = "redis: connection to " + where() + " lost";
  if (e) why += ": " + describe_exception(e);
  drop_connection(std::make_exception_ptr(ConnectionError(why)), why);
}

void Core::on_protocol_gone(RespProtocol* p) noexcept {
  if (protocol_ == p) {
    protocol_ = nullptr;
    transport_ = nullptr;
  }
}

void Core::pause_reading() noexcept {
  reading_paused_ = true;
  if (transport_) transport_->pause_reading();
}

void Core::resume_reading() noexcept {
  reading_paused_ = false;
  if (transport_) transport_->resume_reading();
}

void Core::arm_watchdog(TimePoint when) {
  watchdog_armed_ = true;
  watchdog_ = loop_.call_at(when, [this] { on_watchdog(); });
}

// One timer for the whole FIFO: it fires at the oldest reply's deadline and re-arms for the next oldest, so a
// command costs no timer operation (replies come in order, so only the head can be the first to be late).
void Core::on_watchdog() {
  watchdog_armed_ = false;
  if (head_ == tail_) return;
  TimePoint d = slot(head_).deadline;
  if (d == TimePoint::max()) return;
  if (d > loop_.time()) {
    arm_watchdog(d);
    return;
  }
  std::string why = "redis: no reply from " + where() + " within " + std::to_string(millis(options_->command_timeout)) +
                    " ms: the connection was closed";
  drop_connection(std::make_exception_ptr(TimeoutError(why)), why);
}

// What an exclusive connection's commands leave behind, for Pool::give_back.
void Core::track(std::span<const Arg> args) noexcept {
  if (args.empty()) return;
  const Arg& a = args[0];
  if (is(a, "MULTI"))
    in_multi_ = true;
  else if (is(a, "EXEC") || is(a, "DISCARD"))
    in_multi_ = watching_ = false;
  else if (is(a, "WATCH"))
    watching_ = true;
  else if (is(a, "UNWATCH"))
    watching_ = false;
  else if (is(a, "SELECT") || is(a, "SUBSCRIBE") || is(a, "PSUBSCRIBE") || is(a, "SSUBSCRIBE") || is(a, "CLIENT") ||
           is(a, "HELLO") || is(a, "AUTH") || is(a, "MONITOR") || is(a, "RESET") || is(a, "READONLY"))
    dirty_ = true;
}

// --- the entry points of command.hpp

std::uint64_t submit(Core* core, ReplySink* sink, std::span<const Arg> args, SubmitOptions options) noexcept {
  return core->submit(sink, args, options);
}

void forget(Core* core, std::uint64_t seq) noexcept { core->forget(seq); }

}  // namespace tulipa::redis::detail
