// One PostgreSQL connection on tulipa's loop, on libpq (Debian libpq 15), never blocking the loop.
//
//   auto conn = co_await Connection::connect("postgresql://app@db.example/app?connect_timeout=5");
//   Result r = co_await conn.query("SELECT id, name FROM users WHERE id = $1", user_id);
//
// Connecting: the conninfo string or URI is parsed by libpq; host names are resolved on tulipa's DNS pool and handed
// to libpq as hostaddr (the host name stays for TLS verification and .pgpass), then PQconnectStart/PQconnectPoll run
// on the loop, re-watching the socket whenever libpq replaces it (multiple hosts, sslmode=prefer's retry without
// TLS). sslmode and the rest behave as in libpq. ConnectOptions::connect_timeout, or else the conninfo's
// connect_timeout, bounds the whole connect; a failure is a ConnectionError with libpq's message.
//
// Queries: the connection runs in libpq's pipeline mode. Each query() is sent at once (Parse the first time a
// statement is seen, then Bind/Execute of the cached prepared statement) followed by its own Sync, so queries from
// many tasks on one connection are pipelined automatically and one query's error cannot abort another's. Results
// come back in binary format. Arguments (see types.hpp) are borrowed until the query is sent, which is before the
// co_await returns: pass temporaries freely inside the co_await expression.
//
// Cancellation: cancelling the task awaiting a query raises CancelledError at once; the query is abandoned (its
// result is dropped when it arrives) and, if the server is running it, a cancel request is sent from a worker
// thread (PQcancel blocks). The connection stays usable: later queries queue behind the abandoned one. A query
// timeout (ConnectOptions::query_timeout) does the same and raises QueryTimeout. Note PostgreSQL's cancel protocol
// cancels whatever the backend runs when the request arrives: if the abandoned query finished just before, the next
// one in the pipeline may be cancelled instead (it then fails with SQLSTATE 57014).
//
// Threads: a Connection belongs to the loop it was connected on; use it from that loop's thread only.
#pragma once

#include <array>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "tulipa/clock.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/postgres/detail/query.hpp"
#include "tulipa/postgres/error.hpp"
#include "tulipa/postgres/result.hpp"

namespace tulipa::postgres {

// A server notice (RAISE NOTICE, warnings): given to ConnectOptions::on_notice, by default written to the loop's log.
struct Notice {
  std::string severity{};
  std::string sqlstate{};
  std::string message{};
  std::string detail{};
  std::string hint{};
};
using NoticeHandler = std::function<void(const Notice&)>;

// A NOTIFY received on a connection that LISTENs.
struct Notification {
  std::string channel{};
  std::string payload{};
  int pid = 0;  // the notifying backend
};

struct ConnectOptions {
  // Bounds the whole connect (DNS, TCP, TLS, authentication). nullopt: the conninfo's connect_timeout, else 30 s.
  std::optional<Duration> connect_timeout{};
  // Bounds each query from send to result; nullopt: none.
  std::optional<Duration> query_timeout{};
  // Prepared statements kept per connection (least recently used evicted, with DEALLOCATE). 0: every query uses the
  // unnamed statement (Parse each time), as pgbouncer in transaction mode needs.
  std::size_t statement_cache = 256;
  // Server notices; null: the loop's log. Called on the loop thread from inside the connection's I/O: it must not
  // close the connection.
  NoticeHandler on_notice{};
};

class Transaction;
class CopyIn;
class CopyOut;

class Connection {
 public:
  // Connects on the running loop (see the top of this file).
  static Coro<Connection> connect(std::string conninfo, ConnectOptions options = {});

  Connection() noexcept;
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();  // close()

  // co_await conn.query(sql, args...) -> Result. Throws Error (the server's), ConnectionError, QueryTimeout,
  // CancelledError.
  template <class... A>
  detail::Query<A...> query(std::string_view sql, const A&... args) {
    return detail::Query<A...>(impl_.get(), sql, args...);
  }
  // BEGIN; the Transaction commits with commit(), rolls back when destroyed without it (transaction.hpp).
  Coro<Transaction> begin(std::string_view begin_sql = "BEGIN");
  // COPY ... FROM STDIN / TO STDOUT (copy.hpp). The connection runs nothing else until the copy ends: queries
  // issued meanwhile wait, and the copy waits for queries already in flight.
  Coro<CopyIn> copy_in(std::string sql);
  Coro<CopyOut> copy_out(std::string sql);
  // The next NOTIFY for a channel this connection LISTENs to (LISTEN with query()). ConnectionError once the
  // connection is lost (Listener, in listener.hpp, reconnects and resubscribes).
  Coro<Notification> next_notification();

  // Closes at once: pending queries fail with ConnectionError. Idempotent.
  void close() noexcept;
  bool is_open() const noexcept;
  // Open, nothing in flight, no copy, outside any transaction: safe to hand to another user (what Pool checks).
  bool is_idle() const noexcept;
  // Queries sent (or abandoned) whose results have not all arrived yet.
  std::size_t in_flight() const noexcept;
  int backend_pid() const noexcept;
  // A server parameter reported at connect time or since (server_version, TimeZone, ...); empty when unknown.
  std::string parameter(const char* name) const;
  // Prepared statements in this connection's cache.
  std::size_t cached_statements() const noexcept;
  detail::ConnectionImpl* impl() const noexcept { return impl_.get(); }

 private:
  explicit Connection(std::unique_ptr<detail::ConnectionImpl> impl) noexcept;
  std::unique_ptr<detail::ConnectionImpl> impl_;
};

}  // namespace tulipa::postgres
