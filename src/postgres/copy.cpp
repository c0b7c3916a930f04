// COPY FROM STDIN / TO STDOUT (copy.hpp). libpq cannot COPY in pipeline mode: the connection leaves it for the copy
// (ConnectionImpl::begin_exclusive) and drives the socket here, reading only when the user reads.
#include "tulipa/postgres/copy.hpp"

#include <libpq-fe.h>

#include <cstdlib>

#include "postgres/connection_impl.hpp"
#include "postgres/errors.hpp"

namespace tulipa::postgres {

namespace {
constexpr std::size_t flush_every = 64 * 1024;  // the most libpq holds unsent before write() waits
constexpr std::size_t chunk_bytes = 64 * 1024;  // what CopyOut::read() gathers at most (plus one row)

// libpq failed mid-copy: the protocol's state is unknown, so the connection is closed (and says why).
[[noreturn]] void broken(detail::ConnectionImpl& c) {
  std::string why = detail::error_message(c.pg());
  c.close(why);
  throw ConnectionError("postgres: " + why);
}

// Waits until libpq sent everything (reading meanwhile: a server that talks while we write must not block us).
Coro<void> flush_all(detail::ConnectionImpl& c) {
  for (;;) {
    int r = PQflush(c.pg());
    if (r == 0) co_return;
    if (r < 0) break;
    co_await c.wait_io(Events::read_write);
    if ((static_cast<unsigned>(c.last_ready()) & static_cast<unsigned>(Events::read)) && !PQconsumeInput(c.pg())) break;
  }
  broken(c);
}

// The next result of the copy's statement (nullptr: none left), waiting while libpq needs more input.
Coro<PGresult*> next_result(detail::ConnectionImpl& c) {
  while (PQisBusy(c.pg())) {
    co_await c.wait_io(Events::read);
    if (!PQconsumeInput(c.pg())) broken(c);
  }
  co_return PQgetResult(c.pg());
}

// After the copy's last result: consumes the rest, goes back to pipeline mode; rethrows a failed result's error.
Coro<std::uint64_t> end_copy(detail::ConnectionImpl& c, PGresult* last) {
  PGresult* error = nullptr;
  std::uint64_t rows = 0;
  while (last) {
    if (PQresultStatus(last) == PGRES_FATAL_ERROR && !error) {
      error = last;
    } else {
      if (PQresultStatus(last) == PGRES_COMMAND_OK) rows = std::strtoull(PQcmdTuples(last), nullptr, 10);
      PQclear(last);
    }
    last = co_await next_result(c);
  }
  c.end_exclusive();
  if (error) {
    Result keep(error);  // freed after the throw's copy
    detail::throw_result_error(error);
  }
  co_return rows;
}

// Starts `sql` (a COPY) with the connection to itself; the first result must have status `want`.
Coro<LockGuard> start_copy(detail::ConnectionImpl& c, const std::string& sql, ExecStatusType want) {
  LockGuard guard = co_await c.exclusive_lock.scoped();
  co_await c.begin_exclusive();
  if (!PQsendQuery(c.pg(), sql.c_str())) {
    broken(c);
  }
  co_await flush_all(c);
  PGresult* r = co_await next_result(c);
  if (r && PQresultStatus(r) == want) {
    PQclear(r);
    co_return guard;
  }
  if (r && PQresultStatus(r) != PGRES_FATAL_ERROR) {
    PQclear(r);
    c.close("not a COPY");
    throw ConnectionError("postgres: copy_in/copy_out need a COPY ... FROM STDIN / TO STDOUT statement");
  }
  co_await end_copy(c, r);  // throws the server's error
  throw ConnectionError("postgres: the COPY did not start");
}
}  // namespace

Coro<CopyIn> Connection::copy_in(std::string sql) {
  if (!is_open()) throw ConnectionError("postgres: not connected");
  LockGuard g = co_await start_copy(*impl_, sql, PGRES_COPY_IN);
  co_return CopyIn(this, std::move(g));
}

Coro<CopyOut> Connection::copy_out(std::string sql) {
  if (!is_open()) throw ConnectionError("postgres: not connected");
  LockGuard g = co_await start_copy(*impl_, sql, PGRES_COPY_OUT);
  co_return CopyOut(this, std::move(g));
}

CopyIn::~CopyIn() {
  if (active_ && conn_->is_open()) conn_->impl()->close("a COPY was abandoned");
}

Coro<void> CopyIn::write(std::string_view data) {
  detail::ConnectionImpl& c = *conn_->impl();
  if (!active_ || c.closed()) throw ConnectionError("postgres: the COPY is over");
  for (;;) {
    int r = PQputCopyData(c.pg(), data.data(), static_cast<int>(data.size()));
    if (r == 1) break;
    if (r < 0) {
      active_ = false;
      broken(c);
    }
    co_await c.wait_io(Events::write);  // r == 0: no room now
  }
  unflushed_ += data.size();
  if (unflushed_ >= flush_every) {
    unflushed_ = 0;
    co_await flush_all(c);
  }
}

Coro<std::uint64_t> CopyIn::finish() {
  detail::ConnectionImpl& c = *conn_->impl();
  if (!active_ || c.closed()) throw ConnectionError("postgres: the COPY is over");
  active_ = false;
  LockGuard held = std::move(guard_);  // released however this ends
  for (;;) {
    int r = PQputCopyEnd(c.pg(), nullptr);
    if (r == 1) break;
    if (r < 0) {
      broken(c);
    }
    co_await c.wait_io(Events::write);
  }
  co_await flush_all(c);
  PGresult* r = co_await next_result(c);
  co_return co_await end_copy(c, r);
}

CopyOut::~CopyOut() {
  if (active_ && conn_->is_open()) conn_->impl()->close("a COPY was abandoned");
}

Coro<std::optional<std::string_view>> CopyOut::read() {
  detail::ConnectionImpl& c = *conn_->impl();
  chunk_.clear();
  if (!active_) co_return std::nullopt;
  if (c.closed()) {  // closed under it (given back to a pool, close())
    active_ = false;
    throw ConnectionError("postgres: the COPY is over: " + c.close_reason());
  }
  for (;;) {
    // Takes every row libpq has already received, up to a chunk: one await per chunk, not per row.
    char* row = nullptr;
    int n = PQgetCopyData(c.pg(), &row, 1);
    if (n > 0) {
      chunk_.append(row, static_cast<std::size_t>(n));
      PQfreemem(row);
      ++rows_read_;
      if (chunk_.size() >= chunk_bytes) co_return std::string_view(chunk_);
      continue;
    }
    if (n == 0 && !chunk_.empty()) co_return std::string_view(chunk_);  // the rest when it comes
    if (n == -1) {                                                      // the end: the statement's result follows
      active_ = false;
      LockGuard held = std::move(guard_);
      PGresult* r = co_await next_result(c);
      rows_ = co_await end_copy(c, r);
      if (!chunk_.empty()) co_return std::string_view(chunk_);
      co_return std::nullopt;
    }
    if (n == -2) {
      active_ = false;
      broken(c);
    }
    co_await c.wait_io(Events::read);
    if (!PQconsumeInput(c.pg())) {
      active_ = false;
      broken(c);
    }
  }
}

}  // namespace tulipa::postgres
