// FutureCore: the untyped half of every future and task (state, exception, waiter list).
#include <ostream>

#include "tulipa/future.hpp"
#include "tulipa/task.hpp"

namespace tulipa::detail {

FutureCore::~FutureCore() {
  while (DoneNode* n = head_) {
    remove_node(*n);
    if (n->drop) n->drop(n);
  }
  report_unretrieved();
}

void FutureCore::report_unretrieved() noexcept {
  if (state_ != State::finished || !exception_ || retrieved_) return;
  retrieved_ = true;
  try {
    ErrorContext ctx;
    ctx.message = task_ ? "Task exception was never retrieved" : "Future exception was never retrieved";
    ctx.exception = exception_;
    if (task_) {
      ctx.task = task_->name();
      ctx.scheduled_at = task_->created_at_;
    }
    loop_->call_exception_handler(ctx);
  } catch (...) {
  }
}

bool FutureCore::cancel(std::string msg) {
  if (task_) return task_->cancel(std::move(msg));
  if (done()) return false;
  finish(State::cancelled, std::make_exception_ptr(CancelledError(std::move(msg))));
  return true;
}

void FutureCore::check_settable() const {
  if (task_) throw InvalidStateError("a task's result is set by its coroutine, not by set_result/set_exception");
  if (done()) throw InvalidStateError("the future is already done");
}

void FutureCore::set_exception(std::exception_ptr e) {
  check_settable();
  if (!e) throw std::invalid_argument("set_exception: null exception_ptr");
  finish(State::finished, std::move(e));
}

bool FutureCore::try_set_exception(std::exception_ptr e) noexcept {
  if (task_ || done() || !e) return false;
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
  n.prev = tail_;
  n.next = nullptr;
  if (tail_) {
    tail_->next = &n;
  } else {
    head_ = &n;
  }
  tail_ = &n;
  n.linked = true;
}

void FutureCore::remove_node(DoneNode& n) noexcept {
  if (!n.linked) return;
  (n.prev ? n.prev->next : head_) = n.next;
  (n.next ? n.next->prev : tail_) = n.prev;
  n.prev = n.next = nullptr;
  n.linked = false;
}

bool FutureCore::has_node(const void* node, std::uint64_t seq) const noexcept {
  for (DoneNode* n = head_; n; n = n->next)
    if (n == node && n->seq == seq) return true;
  return false;
}

void FutureCore::finish(State s, std::exception_ptr e) noexcept {
  state_ = s;
  exception_ = std::move(e);
  ref();  // a node's fn may drop the last handle (it only schedules, but be safe)
  while (DoneNode* n = head_) {
    remove_node(*n);
    n->fn(n, *this);
  }
  unref();
}

void FutureCore::describe(std::ostream& os) const {
  if (task_) {
    os << "Task '" << task_->name() << "'";
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
