// The awaiter behind every command of tulipa::redis (client.command(...), client.get(...), ...). Internal: the
// public contract is in client.hpp.
//
// A command is serialized and queued when it is awaited (in await_suspend, after the task parked), never before:
// the arguments are borrowed views of the caller's strings, valid until the end of the full expression that
// contains the co_await. So `co_await client.set(key, value)` is right, and keeping the awaitable for later is not.
// The awaiter is a ReplySink in the connection's FIFO; cancelling it (or destroying its frame) turns its FIFO slot
// into a "drop" slot: the reply is still read off the stream when it comes, and thrown away (never handed to the
// next caller).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tulipa/clock.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/redis/resp.hpp"

namespace tulipa::redis {

// A stream entry (XRANGE, XREAD): its id and its field/value pairs.
struct StreamEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
};
// XREAD's answer for one stream.
struct StreamEntries {
  std::string stream;
  std::vector<StreamEntry> entries;
};
// BLPOP's answer: the list it popped from and the value.
struct KeyValue {
  std::string key;
  std::string value;
};

namespace detail {

class Core;

// What the connection hands a reply to. deliver() gets a reader at the start of the reply's frame (never an error
// reply: those come to fail() as ServerError). Both are called at most once, on the loop thread.
class ReplySink {
 public:
  virtual void deliver(RespReader& frame) noexcept = 0;
  virtual void fail(std::exception_ptr error) noexcept = 0;

 protected:
  ~ReplySink() = default;
};

struct SubmitOptions {
  std::uint32_t pushes = 0;  // (P|S)(UN)SUBSCRIBE: answered by this many push frames instead of a reply
  Duration block{};          // a blocking command's own timeout, added to the command timeout (max: forever)
};

// Queues the command on the connection (connecting first when needed); its reply goes to `sink`. Never throws: a
// command that cannot be queued (the client is closed) has sink->fail() called at once. Returns the FIFO position.
std::uint64_t submit(Core* core, ReplySink* sink, std::span<const Arg> args, SubmitOptions options) noexcept;
// The caller went away: the reply at `seq` will be read and dropped.
void forget(Core* core, std::uint64_t seq) noexcept;

// Decoders: the reply's frame into the caller's type. They throw ReplyTypeError for a reply of another type.
struct Ok {};        // any reply but an error (OK, QUEUED, a subscription confirmation)
struct StringInto {  // GET into a caller's buffer (its capacity is reused: no allocation per GET)
  std::string* out;
  bool found = false;
};
struct SetResult {  // SET: OK, or null when NX/XX prevented it
  bool done = false;
};
void decode(RespReader& r, Reply& v);
void decode(RespReader& r, Ok& v);
void decode(RespReader& r, std::optional<std::string>& v);
void decode(RespReader& r, std::string& v);
void decode(RespReader& r, long long& v);
void decode(RespReader& r, bool& v);  // 0/1 integers, booleans
void decode(RespReader& r, StringInto& v);
void decode(RespReader& r, SetResult& v);
void decode(RespReader& r, std::vector<std::optional<std::string>>& v);
void decode(RespReader& r, std::vector<StreamEntry>& v);
void decode(RespReader& r, std::vector<StreamEntries>& v);
void decode(RespReader& r, std::optional<KeyValue>& v);

// What `co_await` gives for a decoder type.
template <class T>
struct ResultOf {
  using type = T;
  static T take(T& v) { return std::move(v); }
};
template <>
struct ResultOf<Ok> {
  using type = void;
  static void take(Ok&) {}
};
template <>
struct ResultOf<StringInto> {
  using type = bool;
  static bool take(StringInto& v) { return v.found; }
};
template <>
struct ResultOf<SetResult> {
  using type = bool;
  static bool take(SetResult& v) { return v.done; }
};

// The untyped part of the awaiter.
class CommandBase : public Suspension, public ReplySink {
 public:
  CommandBase(CommandBase&& o) noexcept : Suspension(), core_(o.core_), options_(o.options_) {}
  ~CommandBase() {
    if (queued_) forget(core_, seq_);
  }
  bool await_ready() const noexcept { return false; }
  void describe(std::ostream& os) const override;

 protected:
  CommandBase(Core* core, SubmitOptions options) noexcept : core_(core), options_(options) {}
  bool suspend(std::coroutine_handle<> h, std::span<const Arg> args) {
    if (!park(h)) return false;
    queued_ = true;
    seq_ = submit(core_, this, args, options_);
    return true;
  }
  void resume_checks() {
    check_cancelled();
    if (error_) std::rethrow_exception(error_);
  }
  void fail(std::exception_ptr error) noexcept final {
    queued_ = false;
    error_ = std::move(error);
    wake();
  }
  Cancel on_cancel() noexcept final {
    if (queued_) forget(core_, seq_);
    queued_ = false;
    return Cancel::detached;
  }

  Core* core_;
  SubmitOptions options_;
  std::uint64_t seq_ = 0;
  std::exception_ptr error_;
  bool queued_ = false;
};

// The arguments: N inline (a fixed command), or a vector (N == 0: any number).
template <std::size_t N>
struct ArgStore {
  std::array<Arg, N> args;
  std::uint8_t n = N;
  std::span<const Arg> span() const noexcept { return {args.data(), n}; }
};
template <>
struct ArgStore<0> {
  std::vector<Arg> args;
  std::span<const Arg> span() const noexcept { return args; }
};

}  // namespace detail

// The awaitable a command returns: `co_await` it once, in the same expression (see the top of this file).
template <class T, std::size_t N>
class [[nodiscard]] Command final : public detail::CommandBase {
 public:
  Command(detail::Core* core, detail::ArgStore<N> args, T initial = T{}, detail::SubmitOptions options = {})
      : CommandBase(core, options), args_(std::move(args)), value_(std::move(initial)) {}
  Command(Command&&) noexcept = default;

  bool await_suspend(std::coroutine_handle<> h) { return suspend(h, args_.span()); }
  typename detail::ResultOf<T>::type await_resume() {
    resume_checks();
    return detail::ResultOf<T>::take(value_);
  }

 private:
  void deliver(RespReader& frame) noexcept override {
    queued_ = false;
    try {
      detail::decode(frame, value_);
    } catch (...) {
      error_ = std::current_exception();
    }
    wake();
  }
  detail::ArgStore<N> args_;
  T value_;
};

}  // namespace tulipa::redis
