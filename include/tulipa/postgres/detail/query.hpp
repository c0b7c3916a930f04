// Internals of tulipa/postgres/connection.hpp: the awaiter that Connection::query() and Transaction::query() return.
#pragma once

#include <array>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iosfwd>
#include <string_view>
#include <tuple>
#include <utility>

#include "tulipa/coro.hpp"
#include "tulipa/postgres/detail/codec.hpp"
#include "tulipa/postgres/result.hpp"

namespace tulipa::postgres {

namespace detail {
class ConnectionImpl;

// The awaiter of query(): see Connection::query. Lives in the awaiting coroutine's frame.
class QueryOp : public Suspension {
 public:
  QueryOp(ConnectionImpl* conn, std::string_view sql) noexcept : conn_(conn), sql_(sql) {}
  QueryOp(QueryOp&& o) noexcept : Suspension(), conn_(o.conn_), sql_(o.sql_) {}
  ~QueryOp();
  bool await_ready() const noexcept { return false; }
  Result await_resume();
  void describe(std::ostream& os) const override;

  // --- the connection's side (loop thread)
  void complete(pg_result* result, pg_result* error) noexcept;
  void fail(std::exception_ptr e) noexcept;
  std::uint64_t seq() const noexcept { return seq_; }

 protected:
  bool submit(std::coroutine_handle<> h, const Param* params, int count);

 private:
  Cancel on_cancel() noexcept override;
  ConnectionImpl* conn_;
  std::string_view sql_;
  pg_result* result_ = nullptr;
  pg_result* error_ = nullptr;
  std::exception_ptr failure_;
  const Param* params_ = nullptr;  // kept while the query waits for a COPY to end (blocked)
  int count_ = 0;
  std::uint64_t seq_ = 0;
  bool pending_ = false;  // sent, no answer yet
  friend class ConnectionImpl;
};

template <class... A>
class [[nodiscard]] Query final : public QueryOp {
 public:
  Query(ConnectionImpl* conn, std::string_view sql, const A&... args) noexcept : QueryOp(conn, sql), args_(args...) {}
  Query(Query&& o) noexcept : QueryOp(std::move(o)), args_(o.args_) {}
  bool await_suspend(std::coroutine_handle<> h) {
    // Encoded here, where the awaiter no longer moves: a Param may point into its own scratch bytes.
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (encode(params_[I], std::get<I>(args_)), ...);
    }(std::index_sequence_for<A...>{});
    return submit(h, params_.data(), static_cast<int>(sizeof...(A)));
  }

 private:
  std::tuple<const A&...> args_;
  std::array<Param, sizeof...(A)> params_;
};
}  // namespace detail

}  // namespace tulipa::postgres
