// A pool of connections.
//
//   Pool pool("host=/run/postgresql dbname=chat", {.max_size = 10, .min_idle = 2});
//   Result r = co_await pool.query("SELECT body FROM messages WHERE room = $1", room);   // acquire, query, release
//   {
//     auto conn = co_await pool.acquire();           // exclusive use until `conn` is destroyed
//     auto tx = co_await conn->begin();  ...  co_await tx.commit();
//   }
//
// acquire() hands out an idle connection (checked with a round trip when it was idle longer than
// health_check_after; one the server closed is noticed by itself, as every idle connection watches its socket),
// else opens one while fewer than max_size exist, else waits, in FIFO order, up to acquire_timeout (PoolTimeout).
// A connection given back in an unknown state (a query still in flight, cancelled mid-query, inside a transaction,
// broken) is closed, never handed to the next user. min_idle connections are opened in the background and kept.
// The pool must outlive the connections it lent. Loop thread only.
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
  ConnectOptions connect;  // for every connection of the pool
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
  std::vector<Task<void>> openers_;  // background opening for min_idle
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tulipa::postgres
