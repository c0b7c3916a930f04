// FutureCore: the untyped half of every future and task (state, exception, waiter list).
#include <ostream>

#include "loop/error_context.hpp"
#include "tulipa/future.hpp"
#include "tulipa/task.hpp"

namespace tulipa::detail {

namespace {
thread_local constinit std::uint64_t tls_callback_seq = 0;
}

std::uint64_t FutureCore::next_callback_seq() noexcept { return ++tls_callback_seq; }

FutureCore::~FutureCore() {
  while (DoneNode* n = head()) {
    remove_node(*n);
    if (n->drop) n->drop(n);
  }
  report_unretrieved();
}

void FutureCore::report_unretrieved() noexcept {
  if (state_ != State::finished || !exception_ || retrieved_) return;
  retrieved_ = true;
  try {
    TaskBase* t = task();
    ErrorContext ctx = detail::error_context(
        t ? "Task exception was never retrieved" : "Future exception was never retrieved", exception_);
    if (t) {
      ctx.task = t->name();
      ctx.scheduled_at = t->created_at();
    }
    loop_->call_exception_handler(ctx);
  } catch (...) {
  }
}

bool FutureCore::cancel(std::string msg) {
  // asyncio: cancelling a future that already holds an exception counts as looking at it (no "exception was never
  // retrieved" report for it afterwards).
  if (done()) {
    retrieved_ = true;
    return false;
  }
  if (TaskBase* t = task()) return t->cancel(std::move(msg));
  finish(State::cancelled, std::make_exception_ptr(CancelledError(std::move(msg))));
  return true;
}

void FutureCore::check_settable() const {
  if (task()) throw InvalidStateError("a task's result is set by its coroutine, not by set_result/set_exception");
  if (done()) throw InvalidStateError("the future is already done");
}

void FutureCore::set_exception(std::exception_ptr e) {
  check_settable();
  if (!e) throw std::invalid_argument("set_exception: null exception_ptr");
  finish(State::finished, std::move(e));
}

bool FutureCore::try_set_exception(std::exception_ptr e) noexcept {
  if (task() || done() || !e) return false;
  finish(State::finished, std::move(e));
  return true;
}

void FutureCore::check_result() {
  switch (state_) {
    case State::pending:
      throw InvalidStateError("the result is not set yet");
    case State::cancelled:
      std::rethrow_exception(exception_);
    case State::finished:
      if (exception_) {
        retrieved_ = true;
        std::rethrow_exception(exception_);
      }
      return;
  }
}

std::exception_ptr FutureCore::exception() {
  switch (state_) {
    case State::pending:
      throw InvalidStateError("the exception is not set yet");
    case State::cancelled:
      std::rethrow_exception(exception_);
    case State::finished:
      break;
  }
  retrieved_ = true;
  return exception_;
}

std::exception_ptr FutureCore::cancelled_error() const { return state_ == State::cancelled ? exception_ : nullptr; }

void FutureCore::add_node(DoneNode& n) noexcept {
  if (tail_) {
    DoneNode* first = tail_->next;
    n.prev = tail_;
    n.next = first;
    first->prev = &n;
    tail_->next = &n;
  } else {
    n.prev = n.next = &n;
  }
  tail_ = &n;
  n.linked = true;
}

void FutureCore::remove_node(DoneNode& n) noexcept {
  if (!n.linked) return;
  if (n.next == &n) {
    tail_ = nullptr;
  } else {
    n.prev->next = n.next;
    n.next->prev = n.prev;
    if (tail_ == &n) tail_ = n.prev;
  }
  n.prev = n.next = nullptr;
  n.linked = false;
}

bool FutureCore::has_node(const void* node, std::uint64_t seq) const noexcept {
  DoneNode* first = head();
  if (!first) return false;
  DoneNode* n = first;
  do {
    if (n == node && n->seq == seq) return true;
    n = n->next;
  } while (n != first);
  return false;
}

void FutureCore::finish(State s, std::exception_ptr e) noexcept {
  state_ = s;
  exception_ = std::move(e);
  ref();  // a node's fn may drop the last handle (it only schedules, but be safe)
  while (DoneNode* n = head()) {
    remove_node(*n);
    n->fn(n, *this);
  }
  unref();
}

void FutureCore::describe(std::ostream& os) const {
  if (TaskBase* t = task()) {
    os << "Task '" << t->name() << "'";
  } else {
    os << "Future";
  }
  switch (state_) {
    case State::pending:
      os << " (pending)";
      break;
    case State::cancelled:
      os << " (cancelled)";
      break;
    case State::finished:
      os << (exception_ ? " (failed)" : " (finished)");
      break;
  }
}

}  // namespace tulipa::detail
