// Internals of tulipa/future.hpp (the library's, not part of the contract).
#pragma once

#include <concepts>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include "tulipa/callback.hpp"
#include "tulipa/cancel.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/loop.hpp"

namespace tulipa {

template <class T>
class Future;

namespace detail {

// An intrusive entry in a future's list of waiters. `fn` runs synchronously when the future completes, after the
// node was unlinked: it must only record and schedule (wake a Suspension, call_soon, count), never run user code,
// complete futures or cancel tasks. `drop` (may be null) runs if the future is destroyed with the node still linked.
struct DoneNode {
  DoneNode* prev = nullptr;
  DoneNode* next = nullptr;
  void (*fn)(DoneNode* self, FutureCore& future) noexcept = nullptr;
  void (*drop)(DoneNode* self) noexcept = nullptr;
  std::uint64_t seq = 0;  // done callbacks: tells a live node from a reused address in remove_done_callback
  bool linked = false;
};

class FutureCore : public Pooled {
 public:
  enum class State : std::uint8_t { pending, finished, cancelled };

  explicit FutureCore(EventLoop& loop) noexcept : loop_(&loop) {}
  FutureCore(const FutureCore&) = delete;
  FutureCore& operator=(const FutureCore&) = delete;
  virtual ~FutureCore();

  void ref() noexcept { ++refs_; }
  void unref() noexcept {
    if (--refs_ == 0) delete this;
  }
  std::uint32_t refs() const noexcept { return refs_; }

  EventLoop& loop() const noexcept { return *loop_; }
  State state() const noexcept { return state_; }
  bool done() const noexcept { return state_ != State::pending; }
  bool cancelled() const noexcept { return state_ == State::cancelled; }
  // Done by raising an exception (not a cancellation). Does not count as retrieving it.
  bool has_exception() const noexcept { return state_ == State::finished && exception_ != nullptr; }
  // Cancelled or failed.
  bool failed() const noexcept { return state_ == State::cancelled || has_exception(); }
  // The task whose state this is, or null for a plain future.
  TaskBase* task() const noexcept {
    if (task_offset_ == 0) return nullptr;
    return reinterpret_cast<TaskBase*>(const_cast<char*>(reinterpret_cast<const char*>(this)) + task_offset_);
  }

  // Plain futures: cancel now (done callbacks scheduled). Tasks: a cancellation request (TaskBase::cancel).
  bool cancel(std::string msg = {});
  void set_exception(std::exception_ptr e);
  bool try_set_exception(std::exception_ptr e) noexcept;
  // For result(): throws InvalidStateError while pending, CancelledError if cancelled, the exception if failed.
  void check_result();
  // asyncio's exception(): InvalidStateError while pending, CancelledError if cancelled, else the exception or null.
  std::exception_ptr exception();
  std::exception_ptr cancelled_error() const;  // the CancelledError a cancelled future raises

  void add_node(DoneNode& n) noexcept;
  void remove_node(DoneNode& n) noexcept;
  // Throws InvalidStateError if done, or if this is a task (only the task's coroutine completes a task).
  void check_settable() const;
  // Marks done and runs the nodes' fns. Derived classes store the value first.
  void finish(State s, std::exception_ptr e) noexcept;
  // A number no other done callback of this thread has (tells a live node from a reused address).
  static std::uint64_t next_callback_seq() noexcept;
  bool has_node(const void* node, std::uint64_t seq) const noexcept;
  void mark_retrieved() noexcept { retrieved_ = true; }
  // Reports an exception nobody retrieved through the loop's exception handler (once). Run by the destructors.
  void report_unretrieved() noexcept;
  void describe(std::ostream& os) const;

  // Tasks only (TaskState<T> overrides them; see TaskBase): the root coroutine finished / must be destroyed unrun.
  virtual void task_root_done() noexcept {}
  virtual void task_destroy_root() noexcept {}

 protected:
  DoneNode* head() const noexcept { return tail_ ? tail_->next : nullptr; }

  // Laid out for the per-task budget (a task per connection): 40 bytes with the vtable pointer.
  EventLoop* loop_;
  std::uint32_t refs_ = 0;
  State state_ = State::pending;
  bool retrieved_ = false;
  // In a task's state: the offset from here to its TaskBase (both are bases of TaskState<T>); 0 for a future.
  std::uint16_t task_offset_ = 0;
  std::exception_ptr exception_;  // the failure; for a cancelled future its CancelledError
  DoneNode* tail_ = nullptr;      // the waiters: a circular list, tail_->next is the first (FIFO, O(1) removal)
  friend class TaskBase;
};

template <class T>
class FutureState : public FutureCore {
 public:
  using FutureCore::FutureCore;
  template <class U>
  void set_value(U&& v) {
    check_settable();
    value_.emplace(std::forward<U>(v));
    finish(State::finished, nullptr);
  }
  const T& result_ref() {
    check_result();
    return *value_;
  }
  T take_result() {
    check_result();
    return std::move(*value_);
  }
  // The result for one consumer: moved out when no other handle can see this future (or T cannot be copied),
  // copied otherwise, so that `co_await std::move(task)` or gather() never empty a result someone else may read.
  T share_result() {
    check_result();
    if constexpr (std::is_copy_constructible_v<T>) {
      if (refs() > 1) return *value_;
    }
    return std::move(*value_);
  }
  T copy_result() {
    if constexpr (std::is_copy_constructible_v<T>) {
      check_result();
      return *value_;
    } else {
      static_assert(std::is_copy_constructible_v<T>, "co_await std::move(future) to move a move-only result out");
    }
  }
  std::optional<T> value_;
};

template <>
class FutureState<void> : public FutureCore {
 public:
  using FutureCore::FutureCore;
  void set_value() {
    check_settable();
    finish(State::finished, nullptr);
  }
  void result_ref() { check_result(); }
  void take_result() { check_result(); }
  void share_result() { check_result(); }
  void copy_result() { check_result(); }
};

// The leaf awaiter for futures and tasks (see the cancellation protocol in coro.hpp).
template <class T, bool Move>
class FutureAwaiter final : public Suspension, public DoneNode {
 public:
  explicit FutureAwaiter(FutureState<T>* st) noexcept : st_(st) {}
  FutureAwaiter(FutureAwaiter&&) = default;
  ~FutureAwaiter() {
    if (linked) st_->remove_node(*this);
  }
  bool await_ready() const noexcept { return st_->done(); }
  bool await_suspend(std::coroutine_handle<> h) {
    if (st_->task() == tls_current_task) throw std::logic_error("tulipa: a task cannot await itself");
    const bool cancel_pending = park_forwarding(h);
    fn = [](DoneNode* self, FutureCore&) noexcept { static_cast<FutureAwaiter*>(self)->wake(); };
    st_->add_node(*this);
    if (cancel_pending) forward_pending_cancel();  // the task cancelled itself: cancel what it awaits (asyncio)
    return true;
  }
  T await_resume() {
    check_cancelled();
    if constexpr (Move) {
      return st_->share_result();
    } else {
      return st_->copy_result();
    }
  }
  void describe(std::ostream& os) const override { st_->describe(os); }

 private:
  Cancel on_cancel() noexcept override {
    // asyncio: cancelling a task that awaits a future cancels the future (or, for a task, requests its
    // cancellation); the awaiting task wakes when that completes. A plain future completes at once and runs our
    // node (wake) from inside cancel().
    bool ok = false;
    try {
      ok = st_->cancel(task()->cancel_message());
    } catch (...) {
    }
    return ok ? Cancel::forwarded : Cancel::refused;
  }
  FutureState<T>* st_;
};

// What the library's templates (combinators, to_thread) read of a Future or a Task: its shared state, owned by the
// handle. A friend of Future.
struct FutureAccess {
  template <class T>
  static FutureState<T>* state(const Future<T>& f) noexcept {
    return f.st_;
  }
};

// Wraps a callable as a done-callback node.
template <class T, class F>
struct CallbackNode final : DoneNode, Pooled {
  CallbackNode(F&& f, std::uint64_t s) : fn_obj(std::move(f)) { seq = s; }
  F fn_obj;
};

}  // namespace detail
}  // namespace tulipa
