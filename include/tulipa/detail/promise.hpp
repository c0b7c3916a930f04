// Internals of coro.hpp: the promise of every tulipa coroutine (where it is, who it returns to) and how an awaited
// coroutine is linked under its awaiter.
#pragma once

#include <bit>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <source_location>
#include <type_traits>
#include <utility>

#include "tulipa/detail/frame_alloc.hpp"
#include "tulipa/detail/tagged_ptr.hpp"
#include "tulipa/detail/task_base.hpp"

namespace tulipa {

template <class T>
class Coro;

namespace detail {

// What every tulipa coroutine's promise carries: where it is (for await chains) and who to resume when it ends.
class PromiseBase {
 public:
  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      PromiseBase& self = h.promise();
      if (TaskBase* t = self.owning_task()) t->frame_ = self.parent();
      if (std::coroutine_handle<> c = self.continuation()) return c;
      return std::noop_coroutine();  // a task's root: control returns to TaskBase::step
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  // Why no exception_ptr member: a failed coroutine hands its exception straight to whoever resumes next (its
  // awaiter's await_resume, or the task's step for a root): nothing runs in between, so one per-thread slot does,
  // and every frame is 8 bytes smaller. The promise keeps only the "failed" bit (in link_).
  void unhandled_exception() noexcept {
    link_.set(failed_tag);
    stash_exception(std::current_exception());
  }
  bool failed() const noexcept { return link_.test(failed_tag); }
  // The exception of the coroutine that just failed (see unhandled_exception), once.
  static std::exception_ptr take_exception() noexcept { return take_stashed_exception(); }

  // Records where each co_await is (file, line, enclosing function) for await chains: one store per await.
#if defined(__has_builtin) && __has_builtin(__builtin_source_location)
  // Why a pointer rather than std::source_location::current(): g++ 12 keeps every class-type temporary of a
  // co_await expression in the frame (docs/coroutines.md, "g++ 12"), a scalar argument it does not.
  // __builtin_source_location() is what current() is made of: the address of the site's static record, which a
  // std::source_location wraps.
  template <class A>
  A&& await_transform(A&& a, const void* where = __builtin_source_location()) noexcept {
    static_assert(sizeof(std::source_location) == sizeof(const void*));
    where_ = std::bit_cast<std::source_location>(where);
    return static_cast<A&&>(a);
  }
#else
  template <class A>
  A&& await_transform(A&& a, std::source_location where = std::source_location::current()) noexcept {
    where_ = where;
    return static_cast<A&&>(a);
  }
#endif

  // Who this coroutine returns to, in one word (a frame is per-connection memory):
  //   bits 1-0 | pointer                          | when
  //   01       | the awaiter's PromiseBase        | awaited by a tulipa coroutine (await chains follow these links)
  //   10       | the TaskBase                     | a task's root: nobody to resume, the task's step goes on
  //   00       | the awaiter's coroutine frame    | awaited by a foreign coroutine (a frame is 8-aligned at least)
  //   00       | null                             | not awaited yet
  //   bit 2 (failed_tag), on top of any of these: the coroutine ended with an exception.
  static constexpr TaggedPtr<3>::Tag parent_tag = 1, task_tag = 2, failed_tag = 4;
  TaggedPtr<3> link_;
  // The awaiting coroutine's promise when it is a tulipa coroutine (await chains), else null.
  PromiseBase* parent() const noexcept { return link_.test(parent_tag) ? link_.ptr<PromiseBase>() : nullptr; }
  std::coroutine_handle<> continuation() const noexcept {
    if (link_.test(parent_tag)) return std::coroutine_handle<PromiseBase>::from_promise(*parent());
    if (link_.test(task_tag)) return {};
    return std::coroutine_handle<>::from_address(link_.ptr());
  }
  void set_task_root(TaskBase* t) noexcept { link_ = TaggedPtr<3>(t, task_tag); }
  // The task this coroutine runs in, when that is known: the running task when this coroutine is its innermost
  // frame (the common case, O(1)); else the task at the root of its chain of tulipa callers (a coroutine resumed
  // by a foreign awaitable inside another task's step); null under a foreign caller.
  TaskBase* owning_task() const noexcept {
    TaskBase* t = tls_current_task;
    if (t && t->frame_ == this) return t;
    const PromiseBase* p = this;
    while (p->link_.test(parent_tag)) p = p->parent();
    return p->link_.test(task_tag) ? p->link_.ptr<TaskBase>() : nullptr;
  }
  std::source_location where_{};
};

template <class T>
class CoroPromise : public PromiseBase {
 public:
  Coro<T> get_return_object() noexcept;
  template <class U>
    requires std::is_convertible_v<U&&, T>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(static_cast<U&&>(v));
  }
  T take() {
    if (failed()) std::rethrow_exception(take_exception());
    return std::move(*value_);
  }
  std::optional<T> value_;
};

template <>
class CoroPromise<void> : public PromiseBase {
 public:
  Coro<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (failed()) std::rethrow_exception(take_exception());
  }
};

// Links a child coroutine under the awaiting one (symmetric transfer target).
template <class Parent>
inline void link_child(PromiseBase& child, std::coroutine_handle<> cont,
                       std::coroutine_handle<Parent> parent) noexcept {
  // The frame is found from a promise as from_promise<PromiseBase> finds it, which is where the compiler put it
  // when the promise is at most 16-aligned (the frame's two function pointers come first); an over-aligned
  // promise is linked by its frame address instead (its await chain then stops there).
  if constexpr (std::is_base_of_v<PromiseBase, Parent> && alignof(Parent) <= 2 * sizeof(void*)) {
    PromiseBase& p = parent.promise();
    child.link_ = TaggedPtr<3>(&p, PromiseBase::parent_tag);
    if (TaskBase* t = p.owning_task()) t->frame_ = &child;
  } else {
    child.link_ = TaggedPtr<3>::from_aligned(cont.address(), 0);  // a frame: 8-aligned at least (table above)
    if (TaskBase* t = tls_current_task) t->frame_ = &child;
  }
}

}  // namespace detail
}  // namespace tulipa
