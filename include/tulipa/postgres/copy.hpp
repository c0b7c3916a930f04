// COPY as streams with backpressure.
//
//   auto in = co_await conn.copy_in("COPY items (id, name) FROM STDIN");
//   co_await in.write("1\tfirst\n2\tsecond\n");        // text format lines, any split
//   std::uint64_t rows = co_await in.finish();
//
//   auto out = co_await conn.copy_out("COPY items TO STDOUT");
//   while (auto rows = co_await out.read()) use(*rows);  // whole rows, valid until the next read()
//
// Backpressure: write() returns once libpq holds at most ~64 KiB not yet sent; read() returns the rows already
// received (up to ~64 KiB, at least one) and reads the socket only when asked, so a slow consumer stops the server
// through TCP's window. During a COPY the connection runs nothing else: queries issued meanwhile are sent when it ends.
// A CopyIn or CopyOut destroyed before its end closes the connection (the protocol's state is then unknown to the next
// user). The connection must outlive them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "tulipa/postgres/connection.hpp"
#include "tulipa/sync.hpp"

namespace tulipa::postgres {

class CopyIn {
 public:
  CopyIn(CopyIn&& o) noexcept
      : conn_(o.conn_),
        guard_(std::move(o.guard_)),
        unflushed_(o.unflushed_),
        active_(std::exchange(o.active_, false)) {}
  CopyIn& operator=(CopyIn&&) = delete;
  ~CopyIn();
  // Queues `data` (borrowed until it returns), waiting while too much is not yet sent.
  Coro<void> write(std::string_view data);
  // Ends the COPY; the rows the server took. Throws the server's Error (a bad line, a constraint).
  Coro<std::uint64_t> finish();

 private:
  friend class Connection;
  CopyIn(Connection* c, LockGuard g) noexcept : conn_(c), guard_(std::move(g)) {}
  Connection* conn_;
  LockGuard guard_;
  std::size_t unflushed_ = 0;
  bool active_ = true;
};

class CopyOut {
 public:
  CopyOut(CopyOut&& o) noexcept
      : conn_(o.conn_),
        guard_(std::move(o.guard_)),
        chunk_(std::move(o.chunk_)),
        rows_(o.rows_),
        rows_read_(o.rows_read_),
        active_(std::exchange(o.active_, false)) {}
  CopyOut& operator=(CopyOut&&) = delete;
  ~CopyOut();
  // The next whole rows (COPY's text or binary bytes, one or more rows), or nullopt at the end. Valid until the
  // next read().
  Coro<std::optional<std::string_view>> read();
  // Rows the server reported once read() returned nullopt.
  std::uint64_t rows() const noexcept { return rows_; }
  // Rows handed out by read() so far.
  std::uint64_t rows_read() const noexcept { return rows_read_; }

 private:
  friend class Connection;
  CopyOut(Connection* c, LockGuard g) noexcept : conn_(c), guard_(std::move(g)) {}
  Connection* conn_;
  LockGuard guard_;
  std::string chunk_;
  std::uint64_t rows_ = 0;
  std::uint64_t rows_read_ = 0;
  bool active_ = true;
};

}  // namespace tulipa::postgres
