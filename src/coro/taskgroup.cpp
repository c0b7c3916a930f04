// TaskGroup (asyncio/taskgroups.py, 3.13's version of __aexit__, which keeps the parent's cancel count stable).
#include "tulipa/taskgroup.hpp"
#include "loop/error_context.hpp"

#include <stdexcept>

namespace tulipa {

struct TaskGroup::Child : detail::DoneNode, detail::Pooled {
  TaskGroup* group = nullptr;  // null once orphaned by a torn-down group
  AnyTask task;
  Child* prev = nullptr;
  Child* next = nullptr;
  bool scheduled = false;  // its on_task_done call is in the loop's ready queue
};

TaskGroup::TaskGroup() : parent_(current_task()) {
  if (!parent_) throw std::logic_error("tulipa::TaskGroup must be used inside a task");
  loop_ = &parent_.get_loop();
}

TaskGroup::~TaskGroup() {
  // Empty unless the frame holding the group was torn down while children ran (close_tasks).
  while (Child* c = head_) {
    unlink(c);
    if (c->linked) c->task.base()->core().remove_node(*c);
    if (c->scheduled) {
      c->group = nullptr;  // the scheduled call frees it
    } else {
      delete c;
    }
  }
}

void TaskGroup::check_open() const {
  if (exited_) throw std::logic_error("tulipa::TaskGroup: the group has finished");
  if (aborting_) throw std::logic_error("tulipa::TaskGroup: the group is shutting down");
}

void TaskGroup::adopt(const AnyTask& t) {
  auto* c = new Child;
  c->group = this;
  c->task = t;
  c->next = head_;
  if (head_) head_->prev = c;
  head_ = c;
  ++live_;
  // Like asyncio's add_done_callback(_on_task_done): the handling runs as its own loop callback.
  c->fn = [](detail::DoneNode* n, detail::FutureCore&) noexcept {
    auto* child = static_cast<Child*>(n);
    try {
      child->group->loop_->call_soon([child] {
        if (child->group) {
          child->group->on_task_done(child);
        } else {
          delete child;
        }
      });
      child->scheduled = true;
    } catch (...) {
    }
  };
  t.base()->core().add_node(*c);
}

void TaskGroup::unlink(Child* c) noexcept {
  (c->prev ? c->prev->next : head_) = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
}

void TaskGroup::abort() noexcept {
  aborting_ = true;
  for (Child* c = head_; c; c = c->next) {
    if (!c->task.done()) {
      try {
        c->task.cancel();
      } catch (...) {
      }
    }
  }
}

void TaskGroup::on_task_done(Child* c) noexcept {
  unlink(c);
  AnyTask task = std::move(c->task);
  delete c;
  --live_;
  if (on_completed_ && live_ == 0 && !on_completed_->done()) on_completed_->set_result();
  if (task.cancelled()) return;
  std::exception_ptr exc = task.exception();  // retrieves it: the group reports it
  if (!exc) return;
  errors_.push_back(exc);
  if (parent_.done()) {
    ErrorContext ctx = detail::error_context("TaskGroup child failed after its parent task finished", exc);
    ctx.task = task.get_name();
    loop_->call_exception_handler(ctx);
    return;
  }
  if (!aborting_ && !parent_cancel_requested_) {
    // Cancel the body (the parent task) too, to be undone with uncancel() in exit().
    abort();
    parent_cancel_requested_ = true;
    try {
      parent_.cancel();
    } catch (...) {
    }
  }
}

Coro<void> TaskGroup::exit(std::exception_ptr body_error) {
  exiting_ = true;
  const bool body_cancelled = body_error && is_cancelled_error(body_error);
  std::exception_ptr propagate_cancellation = body_cancelled ? body_error : nullptr;
  if (body_error && !aborting_) abort();
  while (live_ > 0) {
    if (!on_completed_) on_completed_.emplace(*loop_);
    std::exception_ptr cancelled;
    try {
      co_await *on_completed_;
    } catch (const CancelledError&) {
      cancelled = std::current_exception();
    }
    // Cancelled while waiting: the parent is being cancelled from outside (or again). Cancel the children, keep
    // waiting for them, and remember to propagate.
    if (cancelled && !aborting_) {
      propagate_cancellation = cancelled;
      abort();
    }
    on_completed_.reset();
  }
  exited_ = true;
  if (parent_cancel_requested_) {
    // The group's own cancel() of the parent is withdrawn; if nothing else is pending, the CancelledError it caused
    // is not propagated. If the parent was also cancelled from outside, the count stays above zero and it is.
    if (parent_.uncancel() == 0) propagate_cancellation = nullptr;
  }
  if (propagate_cancellation && errors_.empty()) std::rethrow_exception(propagate_cancellation);
  if (body_error && !body_cancelled) errors_.push_back(body_error);
  if (!errors_.empty()) {
    // An outside cancellation is not swallowed by the errors' priority: re-arm it for the next suspension point,
    // keeping the count stable (asyncio 3.13).
    if (parent_.cancelling() > 0) {
      parent_.uncancel();
      parent_.cancel();
    }
    auto errors = std::move(errors_);
    errors_.clear();
    throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
  }
}

}  // namespace tulipa
