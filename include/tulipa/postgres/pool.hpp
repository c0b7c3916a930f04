// A pool of connections.
//
//   Pool pool("host=/run/postgresql dbname=chat", {.max_size = 10, .min_idle = 2});
//   Result r = co_await pool.query("SELECT body FROM messages WHERE room = $1", room);   // acquire, query, release
//   {
//     auto conn = co_await pool.acquire();           // exclusive use until `conn` is destroyed
//     auto tx = co_await conn->begin();  ...  co_await tx.commit();
//   }
//
// acquire() hands out an idle connection, else opens one while fewer than max_size exist, else waits, in FIFO
// order, up to acquire_timeout (PoolTimeout). An idle connection is checked before it is lent: its socket is read
// without waiting (one poll), so one whose server went away while it was idle (pg_terminate_backend, a restart,
// idle_session_timeout), even since the loop last polled, is dropped and the next one tried, before anything is
// sent: query() never runs on it and never needs to resend (a query already sent is never retried: it may have
// run). One idle longer than health_check_after also makes a round trip. min_idle connections are opened in the
// background and kept.
// A connection given back in an unknown state is never handed to the next user. It is drained when that is cheap
// and safe: requests still in flight (a query cancelled mid-way, whose cancel request is on its way; a
// Transaction's queued ROLLBACK) are awaited, then a transaction left open is rolled back, and the connection is
// reused once it is idle; it is closed instead when that takes longer than drain_timeout, when a COPY is under way
// (the CopyIn / CopyOut's next call then fails with ConnectionError), or when it is broken. The pool must outlive
// the connections it lent. Loop thread only.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tulipa/future.hpp"
#include "tulipa/postgres/connection.hpp"
#include "tulipa/task.hpp"

namespace tulipa::postgres {

struct PoolOptions {
  std::size_t max_size = 10;
  std::size_t min_idle = 0;
  Duration acquire_timeout = std::chrono::seconds(30);
  Duration health_check_after = std::chrono::seconds(10);
  // Bounds the draining of a connection given back busy or inside a transaction (see above); zero: close it.
  Duration drain_timeout = std::chrono::seconds(5);
  ConnectOptions connect{};  // for every connection of the pool
};

class PoolTimeout : public TimeoutError {
 public:
  using TimeoutError::TimeoutError;
};

class Pool;

// A connection lent by the pool; given back when destroyed (or release()d).
class PooledConnection {
 public:
  PooledConnection() = default;
  PooledConnection(PooledConnection&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), conn_(std::move(o.conn_)) {}
  PooledConnection& operator=(PooledConnection&& o) noexcept;
  ~PooledConnection() { release(); }
  Connection* operator->() noexcept { return &conn_; }
  Connection& operator*() noexcept { return conn_; }
  void release() noexcept;

 private:
  friend class Pool;
  PooledConnection(Pool* pool, Connection conn) noexcept : pool_(pool), conn_(std::move(conn)) {}
  Pool* pool_ = nullptr;
  Connection conn_;
};

class Pool {
 public:
  explicit Pool(std::string conninfo, PoolOptions options = {});
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  Coro<PooledConnection> acquire();
  // acquire(), query, give back. Arguments are borrowed until the result is returned.
  template <class... A>
  Coro<Result> query(std::string_view sql, const A&... args) {
    PooledConnection c = co_await acquire();
    co_return co_await c->query(sql, args...);
  }

  std::size_t size() const noexcept { return open_; }  // connections open (idle + lent + opening)
  std::size_t idle() const noexcept { return idle_.size(); }
  std::size_t waiting() const noexcept { return waiters_.size(); }
  // Closes the idle connections; lent ones are closed when given back. Waiters fail with ConnectionError.
  void close() noexcept;

 private:
  friend class PooledConnection;
  struct Idle {
    Connection conn;
    TimePoint since;
  };
  void give_back(Connection conn) noexcept;
  void discard(Connection& conn) noexcept;
  Coro<void> drain(Connection conn);
  void wake_one() noexcept;
  void replenish();
  Coro<void> open_idle();

  std::string conninfo_;
  PoolOptions options_;
  EventLoop* loop_ = nullptr;
  std::vector<Idle> idle_;  // most recently used at the back
  std::size_t open_ = 0;
  bool closed_ = false;
  std::deque<Future<void>> waiters_;
  std::vector<Task<void>> openers_;   // background opening for min_idle
  std::vector<Task<void>> drainers_;  // connections given back busy, being drained
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tulipa::postgres
