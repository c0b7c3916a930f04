// tulipa::redis: an asynchronous Redis client (RESP3, automatic pipelining, pub/sub that survives reconnects).
//
//   redis::Client client(loop, "redis://:secret@127.0.0.1:6379/2");
//   co_await client.set("greeting", "hello");
//   std::optional<std::string> v = co_await client.get("greeting");
//   redis::Reply r = co_await client.command("HGETALL", key);         // any command, typed reply
//   {
//     redis::Connection c = co_await client.exclusive();               // a connection of one's own, for
//     auto item = co_await c.blpop({"jobs"}, 5s);                      // blocking commands and transactions
//   }                                                                  // back to the pool here
//
// Connections. A Client keeps one shared connection, opened on the first command and reopened on the first command
// after it was lost (lazily: a command never waits for reconnection backoff). On connecting it sends HELLO 3 with
// AUTH and SETNAME (or AUTH / CLIENT SETNAME for protocol 2) and SELECT, pipelined with the first commands; a
// failed AUTH fails those commands with the server's error (ServerError, code WRONGPASS / NOAUTH). rediss:// URLs
// (or Options::tls) run over tulipa's TLS layer.
//
// Pipelining. Every command awaited on the shared connection by any task is queued, and all that were queued
// during one pass of the loop are written with one system call (a command alone in its pass, with nothing else
// ready to run, is written at once); replies are matched to callers strictly in FIFO order (Redis answers in
// order). A caller that is cancelled (or whose task is torn down) while its command is in
// flight loses its reply, never its place: the reply is read and dropped when it comes, so the next caller gets its
// own (the bug of redis-py #2624 cannot happen). A connection whose stream state is unknown is closed, and every
// command in flight on it fails with ConnectionError: after bytes that are not RESP (ProtocolError), a reply
// nobody asked for, or a command timeout (TimeoutError). Commands in flight when a connection is lost fail with
// ConnectionError ("connection ... lost"): they may or may not have run.
//
// Blocking commands (BLPOP, XREAD BLOCK, ...) and MULTI/EXEC/WATCH need a connection of their own: on the shared
// one they would stall, or mix with, everyone else's commands. exclusive() leases one from a small pool (at most
// Options::max_exclusive at once; more callers wait). A leased connection goes back to the pool when the
// Connection is destroyed if it is in a known, clean state (nothing in flight, no MULTI or WATCH open, no SELECT,
// ...); otherwise it is closed (a cancelled BLPOP's connection is closed, which unblocks it on the server).
//
// Errors (errors.hpp): an error reply is thrown as ServerError carrying the server's message; connection trouble
// as ConnectionError (TimeoutError for timeouts); typed helpers throw ReplyTypeError for a reply of another type.
//
// Lifetimes and threads: a Client belongs to its loop's thread. It must outlive the commands awaited on it, the
// Connections leased from it and its Subscribers' use of its options. Destroying it fails what is in flight with
// ConnectionError ("client closed"). Command arguments are borrowed until the co_await's full expression ends.
//
// Memory: the shared connection keeps its write buffer, its FIFO (24 bytes a command in flight) and a read buffer
// only for a reply that arrived in part; replies are parsed where they lie in the loop's read buffer. In steady
// state a GET into a caller's string (get(key, out)) allocates nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tulipa/clock.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/redis/detail/command.hpp"
#include "tulipa/redis/errors.hpp"
#include "tulipa/redis/resp.hpp"
#include "tulipa/tls.hpp"

namespace tulipa {
class EventLoop;
}

namespace tulipa::redis {

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  // TLS (rediss://): the context (default: SslContext::client(), which verifies against the system's CAs) and the
  // name to verify (default: host).
  bool tls = false;
  std::optional<SslContext> ssl{};
  std::string server_hostname{};
  // AUTH: username empty means "default" (a password alone is the old requirepass).
  std::string username{};
  std::string password{};
  std::string client_name{};  // CLIENT SETNAME
  int db = 0;                 // SELECT
  int protocol = 3;           // 3: HELLO 3 (RESP3, needs Redis 6+); 2: RESP2 (AUTH, CLIENT SETNAME)
  // Connecting includes the TCP (and TLS) connect and the HELLO/AUTH/SELECT round trip.
  Duration connect_timeout = std::chrono::seconds(10);
  // How long a command may wait for its reply, 0 for no limit. On expiry the connection is closed and every
  // command in flight on it fails with TimeoutError. A blocking command's own timeout is added to it.
  Duration command_timeout{};
  // Exclusive connections (blocking commands, transactions) open at once, at most.
  std::size_t max_exclusive = 8;
  // Subscribers: reconnection backoff (doubling from min to max, with jitter: each delay is drawn from
  // [delay/2, delay]) and how many bytes of undelivered messages they buffer before they stop reading.
  Duration reconnect_min = std::chrono::milliseconds(50);
  Duration reconnect_max = std::chrono::seconds(5);
  std::size_t subscriber_buffer = 8u << 20;

  // redis://[[username]:password@]host[:port][/db][?name=N&protocol=2|3&connect_timeout=MS&command_timeout=MS]
  // rediss:// (the same, over TLS). Hosts may be [IPv6]. User and password are percent-decoded. Throws
  // std::invalid_argument for anything else.
  static Options from_url(std::string_view url);
};

// SET's options.
struct SetOptions {
  enum class Condition : std::uint8_t { always, if_absent /* NX */, if_present /* XX */ };
  Condition condition = Condition::always;
  std::optional<std::chrono::milliseconds> expire{};  // PX
  bool keep_ttl = false;                              // KEEPTTL
};

// XADD's options.
struct XAddOptions {
  std::string_view id = "*";
  std::optional<std::size_t> max_len{};  // MAXLEN ~ n
  bool no_mkstream = false;
};

// The typed helpers, for the Client, a leased Connection and a Subscriber's connection (each `Self` has core()).
// Every helper is `command(...)` with a decoder; the same borrowing rule holds (await at once).
template <class Self>
class Commands {
 public:
  // Any command, any reply: `Reply r = co_await c.command("ZADD", key, 1.5, member);`. Arguments: strings
  // (std::string, std::string_view, const char*, byte spans) and numbers.
  template <class... A>
    requires(std::is_constructible_v<Arg, const A&> && ...)
  Command<Reply, sizeof...(A)> command(const A&... args) {
    return {core(), {{Arg(args)...}}};
  }
  // Any command with its arguments in a list (a span, not a vector by value: g++ 12 destroys a by-value temporary
  // argument in a co_await's operand twice; docs/coroutines.md, "g++ 12").
  Command<Reply, 0> command(std::span<const Arg> args) {
    return {core(), {std::vector<Arg>(args.begin(), args.end())}};
  }
  // The same with a decoder of one's own choosing (detail::decode overloads).
  template <class T, class... A>
  Command<T, sizeof...(A)> command_as(const A&... args) {
    return {core(), {{Arg(args)...}}};
  }

  Command<Reply, 1> ping() { return command("PING"); }
  // GET: nullopt when the key does not exist.
  Command<std::optional<std::string>, 2> get(std::string_view key) {
    return command_as<std::optional<std::string>>("GET", key);
  }
  // GET into `out` (its capacity reused): false when the key does not exist. `out` must live until the co_await ends.
  Command<detail::StringInto, 2> get(std::string_view key, std::string& out) {
    return {core(), {{Arg("GET"), Arg(key)}}, detail::StringInto{&out}};
  }
  // SET: true when the value was set (false when NX/XX prevented it).
  Command<detail::SetResult, 6> set(std::string_view key, std::string_view value, SetOptions o = {}) {
    detail::ArgStore<6> a{{Arg("SET"), Arg(key), Arg(value)}, 3};
    if (o.condition != SetOptions::Condition::always)
      a.args[a.n++] = Arg(o.condition == SetOptions::Condition::if_absent ? "NX" : "XX");
    if (o.expire) {
      a.args[a.n++] = Arg("PX");
      a.args[a.n++] = Arg(static_cast<long long>(o.expire->count()));
    } else if (o.keep_ttl) {
      a.args[a.n++] = Arg("KEEPTTL");
    }
    return {core(), a};
  }
  Command<long long, 2> incr(std::string_view key) { return command_as<long long>("INCR", key); }
  Command<long long, 3> incrby(std::string_view key, long long by) { return command_as<long long>("INCRBY", key, by); }
  // DEL: how many of the keys existed.
  template <class... K>
  Command<long long, 1 + sizeof...(K)> del(const K&... keys) {
    return command_as<long long>("DEL", keys...);
  }
  // EXPIRE: false when the key does not exist.
  Command<bool, 3> expire(std::string_view key, std::chrono::seconds ttl) {
    return command_as<bool>("EXPIRE", key, static_cast<long long>(ttl.count()));
  }
  // HSET key field value [field value ...]: how many fields were added (not updated).
  template <class... FV>
  Command<long long, 4 + sizeof...(FV)> hset(std::string_view key, std::string_view field, std::string_view value,
                                             const FV&... more) {
    static_assert(sizeof...(FV) % 2 == 0, "hset takes field, value pairs");
    return command_as<long long>("HSET", key, field, value, more...);
  }
  Command<std::optional<std::string>, 3> hget(std::string_view key, std::string_view field) {
    return command_as<std::optional<std::string>>("HGET", key, field);
  }
  // LPUSH key value [value ...]: the list's length after the push.
  template <class... V>
  Command<long long, 3 + sizeof...(V)> lpush(std::string_view key, std::string_view value, const V&... more) {
    return command_as<long long>("LPUSH", key, value, more...);
  }
  Command<std::optional<std::string>, 2> rpop(std::string_view key) {
    return command_as<std::optional<std::string>>("RPOP", key);
  }
  // XADD key [NOMKSTREAM] [MAXLEN ~ n] id field value [field value ...]: the entry's id.
  // (Not a list of pairs: g++ 12 cannot keep an initializer_list in a co_await's operand; docs/coroutines.md.)
  template <class... FV>
  Command<std::string, 0> xadd(std::string_view key, XAddOptions o, std::string_view field, std::string_view value,
                               const FV&... more) {
    static_assert(sizeof...(FV) % 2 == 0, "xadd takes field, value pairs");
    std::vector<Arg> a{Arg("XADD"), Arg(key)};
    if (o.no_mkstream) a.emplace_back("NOMKSTREAM");
    if (o.max_len) {
      a.emplace_back("MAXLEN");
      a.emplace_back("~");
      a.emplace_back(*o.max_len);
    }
    a.insert(a.end(), {Arg(o.id), Arg(field), Arg(value), Arg(more)...});
    return {core(), {std::move(a)}};
  }
  Command<std::vector<StreamEntry>, 0> xrange(std::string_view key, std::string_view start = "-",
                                              std::string_view end = "+", std::optional<std::size_t> count = {}) {
    std::vector<Arg> a{Arg("XRANGE"), Arg(key), Arg(start), Arg(end)};
    if (count) {
      a.emplace_back("COUNT");
      a.emplace_back(*count);
    }
    return {core(), {std::move(a)}};
  }
  // XREAD COUNT n STREAMS key id (without BLOCK: a leased Connection has xread_block): the entries after `id`.
  // Several streams at once: command_as<std::vector<StreamEntries>>("XREAD", "STREAMS", k1, k2, id1, id2).
  Command<std::vector<StreamEntries>, 0> xread(std::string_view key, std::string_view id,
                                               std::optional<std::size_t> count = {}) {
    return xread_args(key, id, count, std::nullopt);
  }
  // PUBLISH: how many subscribers received the message.
  Command<long long, 3> publish(std::string_view channel, std::string_view message) {
    return command_as<long long>("PUBLISH", channel, message);
  }

 protected:
  detail::Core* core() { return static_cast<Self*>(this)->core_for_commands(); }
  Command<std::vector<StreamEntries>, 0> xread_args(std::string_view key, std::string_view id,
                                                    std::optional<std::size_t> count,
                                                    std::optional<std::chrono::milliseconds> block) {
    std::vector<Arg> a{Arg("XREAD")};
    if (count) {
      a.emplace_back("COUNT");
      a.emplace_back(*count);
    }
    detail::SubmitOptions o;
    if (block) {
      a.emplace_back("BLOCK");
      a.emplace_back(static_cast<long long>(block->count()));
      o.block = block->count() == 0 ? Duration::max() : Duration(*block);
    }
    a.insert(a.end(), {Arg("STREAMS"), Arg(key), Arg(id)});
    return {core(), {std::move(a)}, {}, o};
  }
};

class Client;
namespace detail {
struct Pool;
}

// An exclusive connection leased from a Client's pool (Client::exclusive()). Move-only; returned to the pool (or
// closed, see the top) when destroyed. Everything of Commands, plus the blocking commands.
class Connection : public Commands<Connection> {
 public:
  Connection(Connection&& o) noexcept
      : pool_(std::exchange(o.pool_, nullptr)), core_(std::exchange(o.core_, nullptr)) {}
  Connection& operator=(Connection&& o) noexcept;
  ~Connection();

  // BLPOP key [key ...] timeout: the first value of the first non-empty list, waiting up to `timeout` (0: forever);
  // nullopt on timeout.
  template <class... K>
  Command<std::optional<KeyValue>, 0> blpop(std::chrono::milliseconds timeout, std::string_view key, const K&... more) {
    std::vector<Arg> a{Arg("BLPOP"), Arg(key), Arg(more)..., Arg(static_cast<double>(timeout.count()) / 1000.0)};
    detail::SubmitOptions o;
    o.block = timeout.count() == 0 ? Duration::max() : Duration(timeout);
    return {core_, {std::move(a)}, {}, o};
  }
  // XREAD BLOCK: waits up to `block` (0: forever) for entries after `id`; empty on timeout.
  Command<std::vector<StreamEntries>, 0> xread_block(std::string_view key, std::string_view id,
                                                     std::chrono::milliseconds block,
                                                     std::optional<std::size_t> count = {}) {
    return xread_args(key, id, count, block);
  }
  // Closes the connection now instead of returning it to the pool (what is in flight fails with ConnectionError).
  void close() noexcept;
  explicit operator bool() const noexcept { return core_ != nullptr; }

  detail::Core* core_for_commands() noexcept { return core_; }

 private:
  friend class Client;
  Connection(detail::Pool* pool, detail::Core* core) noexcept : pool_(pool), core_(core) {}
  detail::Pool* pool_;
  detail::Core* core_;
};

class Subscriber;

class Client : public Commands<Client> {
 public:
  Client(EventLoop& loop, Options options);
  Client(EventLoop& loop, std::string_view url) : Client(loop, Options::from_url(url)) {}
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Opens the shared connection now (it opens on the first command otherwise) and waits until HELLO/AUTH/SELECT
  // are done: the way to see connection and AUTH errors up front.
  Coro<void> connect();
  // A connection of one's own from the pool (waits while max_exclusive are leased).
  Coro<Connection> exclusive();
  // A pub/sub subscriber on a connection of its own, with this client's options (pubsub.hpp).
  Subscriber subscriber();
  // Closes every connection; what is in flight fails with ConnectionError. Commands after this fail at once.
  void close() noexcept;

  const Options& options() const noexcept;
  EventLoop& loop() const noexcept;
  // Connections opened so far (the shared one and exclusive ones, counting reconnections): for tests and metrics.
  std::uint64_t connections_opened() const noexcept;

  detail::Core* core_for_commands() noexcept;

 private:
  std::unique_ptr<detail::Pool> pool_;
};

}  // namespace tulipa::redis
