// The connection's I/O and the pipeline (see connection_impl.hpp and include/tulipa/postgres/connection.hpp).
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <ostream>
#include <string>

#include "postgres/connection_impl.hpp"
#include "postgres/errors.hpp"
#include "tulipa/to_thread.hpp"

namespace tulipa::postgres::detail {

namespace {
// Per-thread scratch for building a request without allocating once warm: the cache key (which starts with the
// statement's text and a NUL, so it doubles as the C string libpq wants) and libpq's parallel parameter arrays.
struct Scratch {
  std::string key;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  std::vector<Oid> types;
};
thread_local Scratch scratch;

bool has(Events set, Events e) noexcept {
  return (static_cast<std::uint32_t>(set) & static_cast<std::uint32_t>(e)) != 0;
}
}  // namespace

void SlotWait::describe(std::ostream& os) const { os << "postgres connection wait"; }

ConnectionImpl::ConnectionImpl(EventLoop& loop, PGconn* pg, ConnectOptions options)
    : loop_(loop), pg_(pg), options_(std::move(options)) {
  PQsetnonblocking(pg_, 1);
  PQsetNoticeReceiver(pg_, &ConnectionImpl::notice_receiver, this);
  if (PQenterPipelineMode(pg_) != 1) throw ConnectionError("cannot enter pipeline mode: " + error_message(pg_));
  fd_ = PQsocket(pg_);
  watched_ = Events::read;  // always: a server that closes an idle connection is noticed at once
  loop_.watch(fd_, watched_, this);
}

ConnectionImpl::~ConnectionImpl() { close("connection closed"); }

void ConnectionImpl::close(std::string reason) noexcept {
  uncork_.cancel();
  if (!closed_) {
    close_reason_ = std::move(reason);
    fail_all(close_reason_);
  }
  if (pg_) {
    PQfinish(pg_);
    pg_ = nullptr;
  }
}

bool ConnectionImpl::idle() const noexcept {
  return !closed_ && !exclusive_ && slots_.empty() && blocked_.empty() && PQtransactionStatus(pg_) == PQTRANS_IDLE;
}

bool ConnectionImpl::probe() noexcept {
  if (closed_) return false;
  if (exclusive_) return true;  // a COPY drives the socket
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) > 0) on_io(Events::read);  // POLLHUP/POLLERR too: reading finds the EOF or the error
  return !closed_;
}

// --- sending

const ConnectionImpl::Statement& ConnectionImpl::prepare(const std::string& key, const char* sql, int count,
                                                         const Oid* types, bool& fresh) {
  if (auto it = cache_.find(key); it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);  // most recently used first
    fresh = false;
    return *it->second;
  }
  if (cache_.size() >= options_.statement_cache) {  // evict the least recently used, after what already uses it
    Statement& old = lru_.back();
    std::string deallocate = std::string("DEALLOCATE ") + old.name;
    cache_.erase(old.key);
    lru_.pop_back();
    send_internal(deallocate);
  }
  lru_.push_front(Statement{key, next_stmt_id_++, {}});
  Statement& st = lru_.front();
  std::snprintf(st.name, sizeof st.name, "tulipa_%u", st.id);
  cache_.emplace(st.key, lru_.begin());
  if (!PQsendPrepare(pg_, st.name, sql, count, types)) throw ConnectionError(error_message(pg_));
  fresh = true;
  return st;
}

void ConnectionImpl::send(QueryOp& op, std::string_view sql, const Param* params, int count) {
  if (exclusive_) {  // a COPY runs: sent when it ends (the arguments live on in the waiting frame)
    op.params_ = params;
    op.count_ = count;
    blocked_.push_back(&op);
    op.pending_ = true;
    return;
  }
  Scratch& s = scratch;
  s.key.assign(sql);
  if (s.values.size() < static_cast<std::size_t>(count)) {
    s.values.resize(count);
    s.lengths.resize(count);
    s.formats.resize(count, 1);
    s.types.resize(count);
  }
  for (int i = 0; i < count; ++i) {
    s.values[i] = params[i].value;
    s.lengths[i] = params[i].length;
    s.types[i] = params[i].type;
  }
  const char* text = s.key.c_str();
  try {
    std::uint32_t stmt_id = 0;
    if (options_.statement_cache == 0) {
      if (!PQsendQueryParams(pg_, text, count, s.types.data(), s.values.data(), s.lengths.data(), s.formats.data(), 1))
        throw ConnectionError(error_message(pg_));
    } else {
      s.key.push_back('\0');
      s.key.append(reinterpret_cast<const char*>(s.types.data()), sizeof(Oid) * count);
      text = s.key.c_str();  // the key's first part: the statement, NUL-terminated
      bool fresh = false;
      const Statement& st = prepare(s.key, text, count, s.types.data(), fresh);
      if (fresh) stmt_id = st.id;
      if (!PQsendQueryPrepared(pg_, st.name, count, s.values.data(), s.lengths.data(), s.formats.data(), 1))
        throw ConnectionError(error_message(pg_));
    }
    batch();
    if (!PQpipelineSync(pg_)) throw ConnectionError(error_message(pg_));
    push_slot(&op, stmt_id);
  } catch (const ConnectionError& e) {
    // libpq refused part of a request: what went out is unknown, so the connection cannot be trusted any more.
    op.fail(std::current_exception());
    fail_all(e.what());
    return;
  }
  flush();
}

void ConnectionImpl::send_internal(std::string_view sql) {
  if (closed_) return;
  std::string text(sql);
  if (!PQsendQueryParams(pg_, text.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 1) || !PQpipelineSync(pg_)) {
    fail_all(error_message(pg_));
    return;
  }
  push_slot(nullptr, 0);
  flush();
}

// libpq 15's PQpipelineSync writes to the socket at once (libpq 17's PQsendPipelineSync does not), so a Sync per
// request is a send() per request. It cannot be deferred: PQpipelineSync calls PQflush whenever its buffer holds
// anything (in nonblocking mode it only tolerates a partial write), and every request needs its own Sync, so holding
// requests back to the end of the pass would still make one send() each. When requests are pipelining (some are in
// flight) and more tasks are queued to run in this loop pass, the socket is corked until the next pass: the send()s
// only append to the socket's queue and the whole batch leaves in full segments, so neither this side nor the server
// pays a transmission (and a server wake-up) per request. A request alone in its pass (one query at a time, or a pool's
// connections) is sent as before, uncorked.
void ConnectionImpl::batch() noexcept {
  if (corked_ || cork_failed_ || slots_.empty() || loop_.ready_count() == 0) return;
  int on = 1;
  if (::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on) != 0) {  // a Unix socket: nothing to batch
    cork_failed_ = true;
    return;
  }
  corked_ = true;
  try {
    uncork_ = loop_.call_soon([this] { uncork(); });  // cancelled by close(): never runs after the connection
  } catch (...) {
    uncork();
  }
}

void ConnectionImpl::uncork() noexcept {
  if (!corked_) return;
  corked_ = false;
  if (closed_ || fd_ < 0) return;
  int off = 0;
  (void)::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &off, sizeof off);  // sends what the cork held
}

void ConnectionImpl::push_slot(QueryOp* op, std::uint32_t stmt_id) {
  Slot slot;
  slot.op = op;
  slot.stmt_id = stmt_id;
  std::uint64_t seq = head_seq_ + slots_.size();
  if (op) {
    op->seq_ = seq;
    op->pending_ = true;
    if (options_.query_timeout)
      slot.timer = loop_.call_later(*options_.query_timeout, [this, seq] { on_timeout(seq); });
  }
  slots_.push_back(std::move(slot));
}

bool ConnectionImpl::flush() noexcept {
  int r = PQflush(pg_);
  if (r < 0) {
    fail_all(error_message(pg_));
    return false;
  }
  bool want = r == 1;  // libpq kept some: watch writability too (and keep reading, or both sides can block)
  if (want != flushing_ && !exclusive_) {
    flushing_ = want;
    watched_ = want ? Events::read_write : Events::read;
    loop_.update_watch(fd_, watched_);
  }
  return true;
}

// --- receiving

void ConnectionImpl::on_io(Events ready) {
  last_ready_ = ready;
  if (exclusive_) {  // a COPY drives the socket itself (and reads only as fast as its user does)
    if (watched_ != Events::none) loop_.update_watch(fd_, watched_ = Events::none);
    SlotWait::wake_slot(io_waiter_);
    return;
  }
  if (has(ready, Events::read) && !PQconsumeInput(pg_)) {
    fail_all(error_message(pg_));
    return;
  }
  if (flushing_ && !flush()) return;
  drain_results();
  if (!closed_) take_notifications();  // parses what is left, so a FATAL sent outside any request arrives here
  if (!closed_ && !server_fatal_.empty()) fail_all("the server closed the connection: " + server_fatal_);
}

void ConnectionImpl::drain_results() noexcept {
  bool last_null = false;
  while (!slots_.empty() && !closed_) {
    if (PQisBusy(pg_)) break;
    PGresult* r = PQgetResult(pg_);
    if (!r) {  // the end of one statement's results; two in a row: nothing more is there yet
      if (last_null) break;
      last_null = true;
      continue;
    }
    last_null = false;
    Slot& s = slots_.front();
    switch (PQresultStatus(r)) {
      case PGRES_PIPELINE_SYNC:
        PQclear(r);
        complete_front();
        break;
      case PGRES_FATAL_ERROR:
        if (!s.error)
          s.error = r;
        else
          PQclear(r);
        break;
      case PGRES_PIPELINE_ABORTED:  // an earlier statement of this same request failed (its Prepare)
        s.aborted = true;
        PQclear(r);
        break;
      default:  // the statement's result: the Prepare's, then the Execute's, which replaces it
        if (s.result) PQclear(s.result);
        s.result = r;
        break;
    }
  }
}

void ConnectionImpl::complete_front() noexcept {
  Slot slot = std::move(slots_.front());
  slots_.pop_front();
  ++head_seq_;
  slot.timer.cancel();
  if (slot.error && slot.stmt_id) {  // its Prepare may have failed: forget the statement so a retry prepares again
    for (auto it = lru_.begin(); it != lru_.end(); ++it) {
      if (it->id == slot.stmt_id) {
        cache_.erase(it->key);
        lru_.erase(it);
        break;
      }
    }
  }
  if (slot.op) {
    if (!slot.error && slot.aborted) {
      slot.op->fail(std::make_exception_ptr(Error(
          Error::Fields{"ERROR", "", "pipeline aborted: an earlier statement of this request failed", "", "", 0})));
      PQclear(slot.result);
    } else {
      slot.op->complete(slot.error ? nullptr : slot.result, slot.error);
      if (slot.error) PQclear(slot.result);
    }
  } else {
    if (slot.error && loop_.get_debug())
      loop_.log("postgres: an abandoned request failed: " + result_message(slot.error));
    PQclear(slot.result);
    PQclear(slot.error);
  }
  if (!slots_.empty() && slots_.front().cancel_when_head) send_cancel();
  if (slots_.empty()) SlotWait::wake_slot(drain_waiter_);
}

void ConnectionImpl::take_notifications() {
  bool any = false;
  while (PGnotify* n = PQnotifies(pg_)) {
    notifications.push_back(Notification{n->relname, n->extra ? n->extra : "", n->be_pid});
    PQfreemem(n);
    any = true;
  }
  if (any) SlotWait::wake_slot(notify_waiter);
}

// --- abandoning, cancelling, failing

void ConnectionImpl::abandon(QueryOp& op) noexcept {
  op.pending_ = false;
  for (auto it = blocked_.begin(); it != blocked_.end(); ++it) {
    if (*it == &op) {  // never sent: nothing to cancel
      blocked_.erase(it);
      return;
    }
  }
  std::uint64_t i = op.seq_ - head_seq_;
  if (op.seq_ < head_seq_ || i >= slots_.size()) return;
  Slot& s = slots_[i];
  if (s.op != &op) return;
  s.op = nullptr;
  s.timer.cancel();
  if (i == 0)
    send_cancel();  // the server runs it now (or soon)
  else
    s.cancel_when_head = true;
}

void ConnectionImpl::on_timeout(std::uint64_t seq) noexcept {
  std::uint64_t i = seq - head_seq_;
  if (seq < head_seq_ || i >= slots_.size() || !slots_[i].op) return;
  QueryOp* op = slots_[i].op;
  abandon(*op);
  op->fail(std::make_exception_ptr(QueryTimeout("postgres query timed out")));
}

void ConnectionImpl::send_cancel() noexcept {
  if (closed_) return;
  PGcancel* cancel = PQgetCancel(pg_);
  if (!cancel) return;
  // PQcancel opens a new connection to the server and waits for it: a worker's job, never the loop's.
  struct Job {
    PGcancel* c;
    explicit Job(PGcancel* p) noexcept : c(p) {}
    Job(Job&& o) noexcept : c(std::exchange(o.c, nullptr)) {}
    ~Job() {
      if (c) PQfreeCancel(c);
    }
    void operator()() {
      char err[256];
      PQcancel(c, err, sizeof err);
    }
  };
  try {
    (void)run_in_executor(loop_, nullptr, Job(cancel));
  } catch (...) {  // the executor is shut down (the loop is closing): the query is abandoned all the same
  }
}

void ConnectionImpl::fail_all(const std::string& why) noexcept {
  if (!closed_) {
    closed_ = true;
    if (close_reason_.empty()) close_reason_ = why;
    if (fd_ >= 0) loop_.unwatch(fd_);
    fd_ = -1;
  }
  auto error = std::make_exception_ptr(ConnectionError("postgres: " + why));
  while (!slots_.empty()) {
    Slot slot = std::move(slots_.front());
    slots_.pop_front();
    ++head_seq_;
    slot.timer.cancel();
    PQclear(slot.result);
    PQclear(slot.error);
    if (slot.op) slot.op->fail(error);
  }
  for (QueryOp* op : std::exchange(blocked_, {})) op->fail(error);
  SlotWait::wake_slot(drain_waiter_);
  SlotWait::wake_slot(io_waiter_);
  SlotWait::wake_slot(notify_waiter);
}

void ConnectionImpl::notice_receiver(void* self, const PGresult* r) {
  auto* c = static_cast<ConnectionImpl*>(self);
  Notice n;
  auto field = [r](int code) {
    const char* v = PQresultErrorField(r, code);
    return std::string(v ? v : "");
  };
  n.severity = field(PG_DIAG_SEVERITY);
  n.sqlstate = field(PG_DIAG_SQLSTATE);
  n.message = field(PG_DIAG_MESSAGE_PRIMARY);
  n.detail = field(PG_DIAG_MESSAGE_DETAIL);
  n.hint = field(PG_DIAG_MESSAGE_HINT);
  // libpq hands a FATAL that arrives outside any request (pg_terminate_backend of an idle backend, a shutdown) to
  // the notice receiver; the server closes the socket right after it. Noted here, acted on once libpq has returned.
  std::string severity = field(PG_DIAG_SEVERITY_NONLOCALIZED);
  if ((severity == "FATAL" || severity == "PANIC") && c->server_fatal_.empty())
    c->server_fatal_ = n.message.empty() ? "FATAL" : n.message;
  if (c->options_.on_notice) {
    c->options_.on_notice(n);
  } else {
    c->loop_.log("postgres " + n.severity + ": " + n.message);
  }
}

// --- exclusive use (COPY)

Coro<void> ConnectionImpl::drained() {
  while (!slots_.empty() && !closed_) co_await SlotWait(drain_waiter_);
}

Coro<void> ConnectionImpl::begin_exclusive() {
  co_await drained();
  if (closed_) throw ConnectionError("postgres: " + close_reason_);
  // After the last Sync's result libpq still holds the pipeline's end: one more PQgetResult lets it go idle.
  while (!PQisBusy(pg_)) {
    PGresult* r = PQgetResult(pg_);
    if (!r) break;
    PQclear(r);
  }
  if (PQexitPipelineMode(pg_) != 1) throw ConnectionError("postgres: " + error_message(pg_));
  exclusive_ = true;
  loop_.update_watch(fd_, watched_ = Events::none);
}

void ConnectionImpl::end_exclusive() noexcept {
  if (!exclusive_) return;
  exclusive_ = false;
  if (closed_) return;
  if (PQenterPipelineMode(pg_) != 1) {
    fail_all("cannot re-enter pipeline mode: " + error_message(pg_));
    return;
  }
  flushing_ = false;
  loop_.update_watch(fd_, watched_ = Events::read);
  for (QueryOp* op : std::exchange(blocked_, {})) {
    op->pending_ = false;
    send(*op, op->sql_, op->params_, op->count_);
  }
}

Coro<void> ConnectionImpl::wait_io(Events events) {
  if (closed_) throw ConnectionError("postgres: " + close_reason_);
  loop_.update_watch(fd_, watched_ = events);
  co_await SlotWait(io_waiter_);
  if (closed_) throw ConnectionError("postgres: " + close_reason_);
}

// --- QueryOp

QueryOp::~QueryOp() {
  if (pending_) conn_->abandon(*this);
  PQclear(result_);
  PQclear(error_);
}

bool QueryOp::submit(std::coroutine_handle<> h, const Param* params, int count) {
  if (!conn_ || conn_->closed()) {
    failure_ = std::make_exception_ptr(
        ConnectionError(conn_ ? "postgres: " + conn_->close_reason() : "postgres: not connected"));
    return false;
  }
  if (!park(h)) return false;
  conn_->send(*this, sql_, params, count);
  return true;
}

Result QueryOp::await_resume() {
  check_cancelled();
  if (failure_) std::rethrow_exception(failure_);
  if (error_) throw_result_error(error_);
  return Result(std::exchange(result_, nullptr));
}

void QueryOp::complete(pg_result* result, pg_result* error) noexcept {
  pending_ = false;
  result_ = result;
  error_ = error;
  wake();
}

void QueryOp::fail(std::exception_ptr e) noexcept {
  pending_ = false;
  failure_ = std::move(e);
  wake();
}

Suspension::Cancel QueryOp::on_cancel() noexcept {
  if (pending_) conn_->abandon(*this);
  return Cancel::detached;
}

void QueryOp::describe(std::ostream& os) const { os << "postgres query: " << sql_.substr(0, 60); }

}  // namespace tulipa::postgres::detail
