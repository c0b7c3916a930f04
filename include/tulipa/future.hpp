// Future<T>: asyncio.Future. A result (or an exception, or a cancellation) that arrives later, on one loop.
//
// A Future is a cheap handle (one pointer, intrusive reference count) to state allocated from the frame allocator,
// so creating and completing futures in steady state allocates nothing. Copies refer to the same future.
// Threads: futures belong to their loop's thread. Copy, destroy and complete them there only. To complete one from
// another thread, move a handle into the other thread's job (moving never touches the count) and complete it with
// loop.call_soon_threadsafe([f = std::move(f), v]() mutable { f.try_set_result(std::move(v)); }).
// A Future must not outlive its loop.
//
// Done callbacks run through the loop (call_soon), never inside set_result. An exception that is never retrieved
// (by result(), exception() or co_await) is reported through the loop's exception handler when the last handle goes.
//
// Awaiting: `co_await fut` resumes the awaiting task when the future is done (on a later loop pass) and returns a
// copy of the result; `co_await std::move(fut)` moves the result out when no other handle refers to the future
// (or T is move-only), else copies it. Cancelling a task
// that awaits a future cancels the future (asyncio's semantics; use shield() to protect it).
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
#include "tulipa/detail/future.hpp"
#include "tulipa/loop.hpp"

namespace tulipa {

template <class T = void>
class Future;

// Identifies a done callback for remove_done_callback().
struct CallbackId {
  const void* node = nullptr;
  std::uint64_t seq = 0;
};

template <class T>
class Future {
 public:
  using value_type = T;

  // A new pending future on the running loop (throws std::runtime_error when no loop runs on this thread).
  Future() : Future(get_running_loop()) {}
  explicit Future(EventLoop& loop) : st_(new detail::FutureState<T>(loop)) { st_->ref(); }
  // An empty handle (no future).
  Future(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor): `f = nullptr` drops it, as shared_ptr
  Future(const Future& o) noexcept : st_(o.st_) {
    if (st_) st_->ref();
  }
  Future(Future&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  Future& operator=(const Future& o) noexcept {
    Future(o).swap(*this);
    return *this;
  }
  Future& operator=(Future&& o) noexcept {
    Future(std::move(o)).swap(*this);
    return *this;
  }
  ~Future() {
    if (st_) st_->unref();
  }
  void swap(Future& o) noexcept { std::swap(st_, o.st_); }
  explicit operator bool() const noexcept { return st_ != nullptr; }
  friend bool operator==(const Future& a, const Future& b) noexcept { return a.st_ == b.st_; }

  // --- completing (plain futures; a task's result comes from its coroutine). InvalidStateError if already done.
  template <class U = T>
    requires(!std::is_void_v<U>)
  void set_result(U&& v) {
    st_->set_value(std::forward<U>(v));
  }
  void set_result()
    requires std::is_void_v<T>
  {
    st_->set_value();
  }
  void set_exception(std::exception_ptr e) { st_->set_exception(std::move(e)); }
  template <class E>
    requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>)
  void set_exception(E&& e) {
    st_->set_exception(std::make_exception_ptr(std::forward<E>(e)));
  }
  // Like set_result/set_exception, but return false instead of throwing when the future is already done
  // (asyncio's _set_result_unless_cancelled; what an executor or a timer uses when the waiter may have gone).
  template <class... U>
  bool try_set_result(U&&... v) {
    if (st_->done() || st_->task()) return false;
    set_result(std::forward<U>(v)...);
    return true;
  }
  bool try_set_exception(std::exception_ptr e) noexcept { return st_->try_set_exception(std::move(e)); }

  // Plain future: cancels it now and schedules its callbacks; false if already done. Task: requests cancellation
  // (see Task::cancel).
  bool cancel(std::string msg = {}) { return st_->cancel(std::move(msg)); }

  // --- state
  bool done() const noexcept { return st_->done(); }
  bool cancelled() const noexcept { return st_->cancelled(); }
  // The result. Throws InvalidStateError while pending, CancelledError if cancelled, the exception if it failed.
  decltype(auto) result() const { return st_->result_ref(); }
  // Moves the result out (for move-only T), even if other handles refer to this future. Same errors as result().
  T take_result() const { return st_->take_result(); }
  // Moves the result out if this is the only handle (or T is move-only), else copies it. Same errors as result().
  T share_result() const { return st_->share_result(); }
  // The exception (null if it succeeded). Throws InvalidStateError while pending, CancelledError if cancelled.
  std::exception_ptr exception() const { return st_->exception(); }
  EventLoop& get_loop() const noexcept { return st_->loop(); }

  // --- done callbacks: `f(Future<T>&)` or `f()`, run through loop.call_soon once the future is done (at once,
  // through call_soon, if it already is). The callable is kept until then; its captures must stay valid until it
  // runs or is removed. remove_done_callback removes it if it has not been scheduled yet; returns 1 or 0.
  template <class F>
  CallbackId add_done_callback(F f) {
    using Node = detail::CallbackNode<T, F>;
    auto* node = new Node(std::move(f), st_->next_callback_seq());
    node->fn = [](detail::DoneNode* self, detail::FutureCore& core) noexcept { schedule_callback<F>(self, core); };
    node->drop = [](detail::DoneNode* self) noexcept { delete static_cast<Node*>(self); };
    CallbackId id{node, node->seq};
    if (st_->done()) {
      schedule_callback<F>(node, *st_);
    } else {
      st_->add_node(*node);
    }
    return id;
  }
  std::size_t remove_done_callback(CallbackId id) {
    if (!st_->has_node(id.node, id.seq)) return 0;
    auto* node = static_cast<detail::DoneNode*>(const_cast<void*>(id.node));
    st_->remove_node(*node);
    node->drop(node);
    return 1;
  }

  // --- awaiting
  detail::FutureAwaiter<T, false> operator co_await() const& noexcept { return detail::FutureAwaiter<T, false>(st_); }
  detail::FutureAwaiter<T, true> operator co_await() && noexcept { return detail::FutureAwaiter<T, true>(st_); }

 protected:
  // Adopts a state, taking one reference (Task's constructor). The library's templates read the state through
  // detail::FutureAccess.
  static Future from_state(detail::FutureState<T>* st) noexcept {
    Future f(nullptr);
    f.st_ = st;
    if (st) st->ref();
    return f;
  }
  friend struct detail::FutureAccess;
  template <class F>
  static void schedule_callback(detail::DoneNode* self, detail::FutureCore& core) noexcept {
    using Node = detail::CallbackNode<T, F>;
    struct Run {
      std::unique_ptr<Node> node;
      Future fut;
      void operator()() {
        if constexpr (std::is_invocable_v<F&, Future&>) {
          node->fn_obj(fut);
        } else {
          node->fn_obj();
        }
      }
    };
    std::unique_ptr<Node> owned(static_cast<Node*>(self));
    try {
      core.loop().call_soon(Run{std::move(owned), from_state(static_cast<detail::FutureState<T>*>(&core))});
    } catch (...) {
      // The loop is closed: the callback can never run; it is dropped with its captures.
    }
  }
  detail::FutureState<T>* st_ = nullptr;
};

}  // namespace tulipa
