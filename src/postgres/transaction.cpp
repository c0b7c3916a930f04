#include "tulipa/postgres/transaction.hpp"

#include <string>

#include "postgres/connection_impl.hpp"

namespace tulipa::postgres {

namespace {
std::string savepoint_name(int depth) { return "tulipa_sp_" + std::to_string(depth); }
}  // namespace

Coro<Transaction> Connection::begin(std::string_view begin_sql) {
  co_await query(begin_sql);
  co_return Transaction(this, 0);
}

Transaction::Transaction(Transaction&& o) noexcept
    : conn_(o.conn_), depth_(o.depth_), active_(std::exchange(o.active_, false)) {}

Transaction::~Transaction() {
  if (!active_ || !conn_->is_open()) return;
  detail::ConnectionImpl& c = *conn_->impl();
  try {
    if (depth_ == 0) {
      c.send_internal("ROLLBACK");
    } else {
      c.send_internal("ROLLBACK TO SAVEPOINT " + savepoint_name(depth_));
      c.send_internal("RELEASE SAVEPOINT " + savepoint_name(depth_));
    }
  } catch (...) {  // out of memory: the connection can no longer be trusted
    conn_->close();
  }
}

Coro<void> Transaction::commit() {
  active_ = false;
  if (depth_ == 0)
    co_await conn_->query("COMMIT");
  else
    co_await conn_->query("RELEASE SAVEPOINT " + savepoint_name(depth_));
}

Coro<void> Transaction::rollback() {
  active_ = false;
  if (depth_ == 0) {
    co_await conn_->query("ROLLBACK");
  } else {
    co_await conn_->query("ROLLBACK TO SAVEPOINT " + savepoint_name(depth_));
    co_await conn_->query("RELEASE SAVEPOINT " + savepoint_name(depth_));
  }
}

Coro<Transaction> Transaction::savepoint() {
  co_await conn_->query("SAVEPOINT " + savepoint_name(depth_ + 1));
  co_return Transaction(conn_, depth_ + 1);
}

}  // namespace tulipa::postgres
