#include "tulipa/postgres/pool.hpp"

#include "postgres/connection_impl.hpp"
#include "tulipa/postgres/connection.hpp"
#include "tulipa/timeout.hpp"

namespace tulipa::postgres {

PooledConnection& PooledConnection::operator=(PooledConnection&& o) noexcept {
  if (this != &o) {
    release();
    pool_ = std::exchange(o.pool_, nullptr);
    conn_ = std::move(o.conn_);
  }
  return *this;
}

void PooledConnection::release() noexcept {
  Pool* p = std::exchange(pool_, nullptr);
  if (!p) return;
  if (conn_.impl() && conn_.impl()->exclusive_lock.locked()) {
    // A COPY under way: its protocol state is unknown to the next user, so the connection is closed, never handed
    // on. It stays here, closed: the CopyIn / CopyOut points at it and holds its lock (its next call fails).
    p->discard(conn_);
    p->wake_one();
    return;
  }
  p->give_back(std::move(conn_));
}

Pool::Pool(std::string conninfo, PoolOptions options)
    : conninfo_(std::move(conninfo)), options_(std::move(options)), loop_(running_loop()) {
  if (options_.max_size == 0) options_.max_size = 1;
  if (options_.min_idle > options_.max_size) options_.min_idle = options_.max_size;
  if (loop_) replenish();
}

Pool::~Pool() {
  *alive_ = false;
  for (auto& t : openers_) t.cancel();
  for (auto& t : drainers_) t.cancel();
  close();
}

void Pool::close() noexcept {
  closed_ = true;
  open_ -= idle_.size();
  idle_.clear();
  for (auto& w : waiters_) {
    if (!w.done()) w.set_exception(std::make_exception_ptr(ConnectionError("postgres: the pool is closed")));
  }
  waiters_.clear();
}

Coro<PooledConnection> Pool::acquire() {
  if (!loop_) loop_ = &get_running_loop();
  TimePoint deadline = loop_->time() + options_.acquire_timeout;
  for (;;) {
    if (closed_) throw ConnectionError("postgres: the pool is closed");
    while (!idle_.empty()) {
      Idle item = std::move(idle_.back());
      idle_.pop_back();
      // The server may have closed it meanwhile (a restart, idle_session_timeout) without the loop having seen it.
      if (!item.conn.is_idle() || !item.conn.impl()->probe()) {
        --open_;
        continue;
      }
      if (loop_->time() - item.since >= options_.health_check_after) {
        try {
          co_await item.conn.query("");
        } catch (const std::exception&) {
          --open_;
          continue;
        }
      }
      replenish();
      co_return PooledConnection(this, std::move(item.conn));
    }
    if (open_ < options_.max_size) {
      ++open_;
      try {
        Connection c = co_await Connection::connect(conninfo_, options_.connect);
        co_return PooledConnection(this, std::move(c));
      } catch (...) {
        --open_;
        wake_one();  // another waiter may try (the server may be back for it)
        throw;
      }
    }
    Duration left = deadline - loop_->time();
    if (left <= Duration::zero())
      throw PoolTimeout("postgres: no connection free in the pool within the acquire timeout");
    Future<void> turn(*loop_);
    waiters_.push_back(turn);
    try {
      co_await wait_for(turn, left);
    } catch (const TimeoutError&) {
      std::erase_if(waiters_, [](const Future<void>& w) { return w.done(); });
      throw PoolTimeout("postgres: no connection free in the pool within the acquire timeout");
    }
  }
}

void Pool::give_back(Connection conn) noexcept {
  if (!closed_ && conn.is_idle()) {
    try {
      idle_.push_back(Idle{std::move(conn), loop_->time()});
    } catch (...) {
      --open_;
    }
  } else if (!closed_ && conn.is_open() && options_.drain_timeout > Duration::zero()) {
    try {  // busy or inside a transaction: drained in the background, then reused
      std::erase_if(drainers_, [](const Task<void>& t) { return t.done(); });
      drainers_.push_back(create_task(*loop_, drain(std::move(conn))));
      return;
    } catch (...) {
      discard(conn);
    }
  } else {
    discard(conn);  // broken, or the pool closed: never handed on
  }
  wake_one();
}

void Pool::discard(Connection& conn) noexcept {
  --open_;
  conn.close();
  replenish();
}

Coro<void> Pool::drain(Connection conn) {
  std::shared_ptr<bool> alive = alive_;
  Duration limit = options_.drain_timeout;
  detail::ConnectionImpl* c = conn.impl();
  try {
    auto answered = c->drained();  // (named: g++ 12 and class temporaries in a co_await operand, docs/coroutines.md)
    co_await wait_for(std::move(answered), limit);
    if (!c->closed() && PQtransactionStatus(c->pg()) != PQTRANS_IDLE) {  // left inside a transaction
      c->send_internal("ROLLBACK");
      auto rolled_back = c->drained();
      co_await wait_for(std::move(rolled_back), limit);
    }
  } catch (...) {  // too slow (TimeoutError), lost, or the pool is going away (CancelledError): not reused
  }
  if (!*alive) co_return;
  if (!closed_ && conn.is_idle()) {
    idle_.push_back(Idle{std::move(conn), loop_->time()});
  } else {
    discard(conn);
  }
  wake_one();
}

void Pool::wake_one() noexcept {
  while (!waiters_.empty()) {
    Future<void> w = std::move(waiters_.front());
    waiters_.pop_front();
    if (!w.done()) {  // a waiter that timed out or was cancelled left its future done
      w.set_result();
      return;
    }
  }
}

void Pool::replenish() {
  if (closed_ || !loop_ || options_.min_idle == 0) return;
  std::erase_if(openers_, [](const Task<void>& t) { return t.done(); });
  while (idle_.size() + openers_.size() < options_.min_idle && open_ < options_.max_size) {
    ++open_;
    openers_.push_back(create_task(*loop_, open_idle()));
  }
}

Coro<void> Pool::open_idle() {
  std::shared_ptr<bool> alive = alive_;
  try {
    Connection c = co_await Connection::connect(conninfo_, options_.connect);
    if (!*alive) co_return;
    idle_.push_back(Idle{std::move(c), loop_->time()});
    wake_one();
  } catch (const std::exception& e) {
    if (!*alive) co_return;
    --open_;
    loop_->log(std::string("postgres pool: opening an idle connection failed: ") + e.what());
  }
}

}  // namespace tulipa::postgres
