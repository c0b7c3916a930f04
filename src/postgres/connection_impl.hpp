// The state behind a Connection (private). The connection runs in libpq's pipeline mode; every request (a query,
// or an internal DEALLOCATE / ROLLBACK) is one slot in `slots`, in the order its Sync was sent, so results are
// matched to slots by position: each PGresult belongs to the front slot until its PGRES_PIPELINE_SYNC completes it.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <deque>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "tulipa/handle.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/postgres/connection.hpp"
#include "tulipa/sync.hpp"

namespace tulipa::postgres::detail {

// A FIFO ring over a vector: push_back / pop_front reuse the slots, so steady traffic allocates nothing.
template <class T>
class Ring {
 public:
  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }
  T& front() noexcept { return buf_[head_]; }
  T& operator[](std::size_t i) noexcept { return buf_[(head_ + i) & (buf_.size() - 1)]; }
  void push_back(T v) {
    if (count_ == buf_.size()) grow();
    buf_[(head_ + count_) & (buf_.size() - 1)] = std::move(v);
    ++count_;
  }
  void pop_front() noexcept {
    buf_[head_] = T{};
    head_ = (head_ + 1) & (buf_.size() - 1);
    --count_;
  }

 private:
  void grow() {
    std::vector<T> next(buf_.empty() ? 16 : buf_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i) next[i] = std::move((*this)[i]);
    buf_ = std::move(next);
    head_ = 0;
  }
  std::vector<T> buf_;
  std::size_t head_ = 0, count_ = 0;
};

// A one-shot wait on something the connection signals (the pipeline drained, I/O during COPY, a notification).
class SlotWait final : public Suspension {
 public:
  explicit SlotWait(SlotWait*& slot) noexcept : slot_(slot) {}
  SlotWait(SlotWait&& o) noexcept : Suspension(), slot_(o.slot_) {}
  ~SlotWait() {
    if (slot_ == this) slot_ = nullptr;
  }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (!park(h)) return false;
    slot_ = this;
    return true;
  }
  void await_resume() const { check_cancelled(); }
  void describe(std::ostream& os) const override;
  // The connection's side: wakes the waiter in `slot`, if any.
  static void wake_slot(SlotWait*& slot) noexcept {
    if (SlotWait* p = slot) {
      slot = nullptr;
      p->wake();
    }
  }

 private:
  Cancel on_cancel() noexcept override {
    if (slot_ == this) slot_ = nullptr;
    return Cancel::detached;
  }
  SlotWait*& slot_;
};

class ConnectionImpl final : public IoWatcher {
 public:
  ConnectionImpl(EventLoop& loop, PGconn* pg, ConnectOptions options);
  ~ConnectionImpl();

  // --- queries (QueryOp's side)
  void send(QueryOp& op, std::string_view sql, const Param* params, int count);
  void abandon(QueryOp& op) noexcept;
  // Sends `sql` (no parameters) as a request nobody awaits: its result is dropped, an error only logged at debug.
  void send_internal(std::string_view sql);

  // --- state
  bool closed() const noexcept { return closed_; }
  const std::string& close_reason() const noexcept { return close_reason_; }
  void close(std::string reason) noexcept;
  bool idle() const noexcept;
  // Reads what the socket holds now, without waiting (one poll): a server that closed the connection (its FATAL
  // message, then EOF) is found out before anything is sent. The pool looks before lending an idle connection, as
  // the loop may not have polled since the server went away. False when the connection is (now) closed.
  bool probe() noexcept;
  // Waits until every request sent has been answered (or the connection closed).
  Coro<void> drained();
  std::size_t in_flight() const noexcept { return slots_.size(); }
  std::size_t cached_statements() const noexcept { return cache_.size(); }
  EventLoop& loop() noexcept { return loop_; }
  PGconn* pg() noexcept { return pg_; }

  // --- exclusive use (COPY): waits until nothing is in flight, leaves pipeline mode; queries issued meanwhile wait.
  Coro<void> begin_exclusive();
  void end_exclusive() noexcept;
  // During exclusive use: waits until the socket is ready for `events` (or the connection closes).
  Coro<void> wait_io(Events events);
  Events last_ready() const noexcept { return last_ready_; }

  // --- notifications
  std::deque<Notification> notifications;
  SlotWait* notify_waiter = nullptr;

 private:
  struct Slot {
    QueryOp* op = nullptr;      // null: abandoned or internal
    std::uint32_t stmt_id = 0;  // the statement this request prepared (0: none)
    bool cancel_when_head = false;
    bool aborted = false;
    pg_result* result = nullptr;
    pg_result* error = nullptr;
    TimerHandle timer;
  };
  struct Statement {
    std::string key;
    std::uint32_t id;
    char name[24];  // "tulipa_<id>", made once
  };

  void on_io(Events ready) override;
  bool flush() noexcept;
  void batch() noexcept;
  void uncork() noexcept;
  void drain_results() noexcept;
  void take_notifications();
  void complete_front() noexcept;
  void send_request(QueryOp* op, const char* sql, const Param* params, int count);
  void push_slot(QueryOp* op, std::uint32_t stmt_id);
  void on_timeout(std::uint64_t seq) noexcept;
  void send_cancel() noexcept;
  void fail_all(const std::string& why) noexcept;
  // The cached statement for `key` (Parse sent now if it is new: `fresh`).
  const Statement& prepare(const std::string& key, const char* sql, int count, const Oid* types, bool& fresh);
  static void notice_receiver(void* self, const PGresult* r);

  EventLoop& loop_;
  PGconn* pg_;
  int fd_ = -1;
  Events watched_ = Events::none;
  Events last_ready_ = Events::none;
  ConnectOptions options_;
  bool closed_ = false;
  bool flushing_ = false;
  bool corked_ = false;       // TCP_CORK set for this loop pass (batch())
  bool cork_failed_ = false;  // not TCP: never corked
  Handle uncork_;
  bool exclusive_ = false;
  std::string close_reason_;
  std::string server_fatal_;  // a FATAL the server sent outside any request: it closes the connection next

  Ring<Slot> slots_;
  std::uint64_t head_seq_ = 1;  // seq of slots_.front(); 0 means "not sent"

  // The statement cache: key (sql '\0' parameter types) -> statement, least recently used at the back.
  std::list<Statement> lru_;
  std::unordered_map<std::string_view, std::list<Statement>::iterator> cache_;
  std::uint32_t next_stmt_id_ = 1;

  std::vector<QueryOp*> blocked_;  // issued during exclusive use, sent when it ends
  SlotWait* drain_waiter_ = nullptr;
  SlotWait* io_waiter_ = nullptr;

 public:
  Lock exclusive_lock;  // one COPY at a time
};

}  // namespace tulipa::postgres::detail
