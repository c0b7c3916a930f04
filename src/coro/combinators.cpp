// The untyped engines of gather() and wait().
#include "tulipa/combinators.hpp"

#include <ostream>

namespace tulipa::detail {

// --- gather

GatherCore::~GatherCore() {
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].linked) children_[i]->remove_node(nodes_[i]);
}

bool GatherCore::await_ready(std::span<FutureCore* const> children) noexcept {
  children_ = children;
  pending_ = 0;
  for (FutureCore* c : children) {
    if (!c->done()) {
      ++pending_;
    } else if (!return_exceptions_ && !first_error_ && c->failed()) {
      first_error_ = c;
    }
  }
  return pending_ == 0 || first_error_;
}

bool GatherCore::await_suspend(std::coroutine_handle<> h, std::span<FutureCore* const> children) {
  children_ = children;
  const bool cancel_pending = park_forwarding(h);
  nodes_.resize(children.size());
  for (std::size_t i = 0; i < children.size(); ++i) {
    if (children[i]->done()) continue;
    Node& n = nodes_[i];
    n.self = this;
    n.fn = [](DoneNode* d, FutureCore& f) noexcept { static_cast<Node*>(d)->self->on_child_done(f); };
    children[i]->add_node(n);
  }
  if (cancel_pending) forward_pending_cancel();  // the task cancelled itself: cancel the children (asyncio)
  return true;
}

void GatherCore::on_child_done(FutureCore& f) noexcept {
  --pending_;
  if (!return_exceptions_ && !first_error_ && f.failed()) first_error_ = &f;
  if (cancel_requested_) {
    // Cancelled: wait for every child to finish its cancellation (deliberately stricter than asyncio, which
    // returns at the first cancelled child and leaves the others cleaning up unobserved).
    if (pending_ == 0) wake();
  } else if (pending_ == 0 || first_error_) {
    wake();
  }
}

Suspension::Cancel GatherCore::on_cancel() noexcept {
  cancel_requested_ = true;
  const std::string& msg = task()->cancel_message();
  for (FutureCore* c : children_) {
    if (!c->done()) {
      try {
        c->cancel(msg);
      } catch (...) {
      }
    }
  }
  return Cancel::forwarded;
}

void GatherCore::check() {
  check_cancelled();
  if (cancel_requested_) throw CancelledError(task() ? task()->cancel_message() : std::string());
  if (!return_exceptions_ && first_error_) first_error_->check_result();
}

void GatherCore::describe(std::ostream& os) const {
  os << "gather(" << children_.size() << " children, " << pending_ << " pending"
     << (cancel_requested_ ? ", cancelling" : "") << ")";
}

// --- wait

WaitCore::~WaitCore() {
  unlink_all();
  timer_.cancel();
}

void WaitCore::unlink_all() noexcept {
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].linked) children_[i]->remove_node(nodes_[i]);
}

bool WaitCore::satisfied() const noexcept {
  std::size_t done = 0;
  for (FutureCore* c : children_) {
    if (!c->done()) continue;
    ++done;
    if (when_ == ReturnWhen::FIRST_COMPLETED) return true;
    if (when_ == ReturnWhen::FIRST_EXCEPTION && c->has_exception()) return true;
  }
  return done == children_.size();
}

bool WaitCore::await_ready(std::span<FutureCore* const> children) noexcept {
  children_ = children;
  return satisfied();
}

bool WaitCore::await_suspend(std::coroutine_handle<> h, std::span<FutureCore* const> children) {
  children_ = children;
  if (!park(h)) return false;
  nodes_.resize(children.size());
  for (std::size_t i = 0; i < children.size(); ++i) {
    if (children[i]->done()) continue;
    Node& n = nodes_[i];
    n.self = this;
    n.fn = [](DoneNode* d, FutureCore&) noexcept {
      WaitCore* self = static_cast<Node*>(d)->self;
      if (self->satisfied()) self->wake();
    };
    children[i]->add_node(n);
  }
  if (timeout_) timer_ = task()->loop().call_later(*timeout_, [this] { wake(); });
  return true;
}

Suspension::Cancel WaitCore::on_cancel() noexcept {
  unlink_all();
  timer_.cancel();
  return Cancel::detached;
}

void WaitCore::describe(std::ostream& os) const {
  static const char* names[] = {"FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"};
  std::size_t done = 0;
  for (FutureCore* c : children_) done += c->done();
  os << "wait(" << children_.size() << " tasks, " << done << " done, " << names[int(when_)] << ")";
}

}  // namespace tulipa::detail
