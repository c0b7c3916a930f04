// Transactions as scope objects.
//
//   auto tx = co_await conn.begin();
//   co_await tx.query("INSERT INTO log VALUES ($1)", line);
//   {
//     auto sp = co_await tx.savepoint();            // SAVEPOINT: a nested scope
//     co_await sp.query("...");                      // an exception here rolls back to the savepoint only
//     co_await sp.commit();                          // RELEASE SAVEPOINT
//   }
//   co_await tx.commit();
//
// A Transaction destroyed without commit() or rollback() (an exception, the task cancelled) rolls back: the
// ROLLBACK (or ROLLBACK TO SAVEPOINT) is queued on the connection at once, without waiting (a destructor cannot
// co_await), so whatever the connection runs next runs after it. The connection must outlive its transactions.
#pragma once

#include <string_view>

#include "tulipa/postgres/connection.hpp"

namespace tulipa::postgres {

class Transaction {
 public:
  Transaction(Transaction&& o) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  template <class... A>
  detail::Query<A...> query(std::string_view sql, const A&... args) {
    return conn_->query(sql, args...);
  }
  // COMMIT (RELEASE SAVEPOINT for a savepoint). A failed COMMIT throws the server's Error; the transaction is over.
  Coro<void> commit();
  // ROLLBACK (ROLLBACK TO SAVEPOINT + RELEASE for a savepoint).
  Coro<void> rollback();
  // SAVEPOINT: a nested scope; it must end before this one does.
  Coro<Transaction> savepoint();
  // True until commit() or rollback() (or their failure).
  bool active() const noexcept { return active_; }
  Connection& connection() const noexcept { return *conn_; }

 private:
  friend class Connection;
  Transaction(Connection* conn, int depth) noexcept : conn_(conn), depth_(depth) {}
  Connection* conn_;
  int depth_;  // 0: the transaction; n: the n-th nested savepoint
  bool active_ = true;
};

}  // namespace tulipa::postgres
