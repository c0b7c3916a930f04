// Coroutines in tulipa: Coro<T> (a lazy coroutine, like a Python coroutine object), the frame allocator, and the
// suspension/cancellation protocol every awaitable of the library follows.
//
// A coroutine function returns Coro<T>. Nothing runs until it is awaited (`co_await f()`, which runs it inside the
// awaiting task by symmetric transfer: no scheduling, no allocation beyond its frame) or wrapped in a task
// (create_task, in task.hpp), which the loop then drives step by step. Coro<T> is move-only and owns its frame.
// Parameters are copied into the frame, but a lambda coroutine only borrows its closure: a capturing lambda must
// outlive the coroutine (create_task(callable) moves the callable into the task for exactly that reason).
//
// ============================================ THE CANCELLATION PROTOCOL ============================================
// Every awaitable in the library that suspends a task (sleep, futures, tasks, gather, locks, queues, socket
// operations...) is a "leaf awaiter": a class deriving from tulipa::Suspension. The task always knows its current
// leaf, which is how Task::cancel() delivers a CancelledError at the exact point where the task waits.
//
//   struct MyAwaiter : tulipa::Suspension {
//     bool await_ready() { return thing_is_ready(); }            // no suspension => no cancellation (as asyncio)
//     bool await_suspend(std::coroutine_handle<> h) {
//       if (!park(h)) return false;   // 1. park FIRST. false: a cancellation is pending; do not register; the
//                                     //    coroutine goes straight on to await_resume, which throws.
//       register_in_wait_list(this);  // 2. only then register with the thing waited on.
//       return true;
//     }
//     T await_resume() {
//       check_cancelled();            // 3. throws CancelledError(msg) if this wait was cancelled.
//       return take_result();
//     }
//     // When the thing happens (loop thread only): unregister, then call wake(). The task resumes on a later loop
//     // pass (call_soon: fair, no recursion). wake() is idempotent and safe after a cancellation.
//     void on_ready() { unregister(this); wake(); }
//     // The hook. Called by Task::cancel() only while parked and not yet woken. Choose one:
//     //   Cancel::detached  - you unregistered from the thing waited on (it can no longer call wake()); the task
//     //                       resumes on its own and check_cancelled() throws. (sleep, lock/queue waiters, wait())
//     //   Cancel::forwarded - you passed the cancellation on (cancelled the awaited future/task/children); the task
//     //                       stays parked until that completes and wakes it, as asyncio does when a task awaiting a
//     //                       future or task is cancelled. await_resume then reports what the awaited thing ended
//     //                       with (normally a CancelledError).
//     //   Cancel::refused   - you cannot stop now; the cancellation stays pending and is delivered at the task's
//     //                       next suspension point (park() returns false there).
//     Cancel on_cancel() noexcept override { unregister(this); return Cancel::detached; }
//     void describe(std::ostream& os) const override { os << "MyThing.wait()"; }  // one line, for await chains
//     ~MyAwaiter() { unregister(this); }  // 4. the frame can be destroyed while suspended: leave nothing behind.
//     MyAwaiter(MyAwaiter&&) = default;   // 5. movable before it suspends (g++ 12 moves awaitables once).
//   };
//
// Rules: once woken, the awaiter's result wins over a later cancel() (no lost item, no lost lock: a cancel()
// arriving between wake() and the task's resumption is delivered at the next suspension point instead). An awaiter
// that can hand its result on may opt in to asyncio's rule (raise at this await) with raise_pending_cancel(). The
// task's cancel message is task()->cancel_message(). Awaiters are loop-thread objects; to complete one from another
// thread, go through EventLoop::call_soon_threadsafe.
// A coroutine may await foreign awaitables that do not derive from Suspension; they work, but the task cannot be
// cancelled while suspended there and current_task() is not set when they resume it.
// ===================================================================================================================
#pragma once

#include <bit>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iosfwd>
#include <memory>
#include <optional>
#include <source_location>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "tulipa/cancel.hpp"

namespace tulipa {

class EventLoop;
class Suspension;
template <class T = void>
class Coro;

namespace detail {

// --- the frame allocator: per-thread size classes (16-byte steps up to 4 KiB) with free lists, so spawning a task
// per request reuses the frames of finished ones; larger frames go to ::operator new. Coroutine frames, future and
// task states all come from here. Blocks are carved from 64 KiB slabs and carry no header (the sized delete tells
// the class), so a 208-byte frame costs 208 bytes, not malloc's 224. A block may be freed on any thread: it joins
// that thread's lists; what a thread cannot keep (beyond its limit, or when it exits) goes to a process-wide depot
// that every thread refills from. Slab memory is reused, never returned to the system.
// The fast paths (pop / push on a list) are inline: they are the cost of every co_await of a coroutine.
struct FrameLists {
  // 16-byte steps (malloc's alignment, so no block is padded beyond what alignment needs): a connection's task
  // state and frame are its biggest objects. The lists cost 2 KiB of thread-local storage.
  static constexpr std::size_t step = 16;
  static constexpr std::size_t classes = 256;  // up to 4 KiB
  struct Block {
    Block* next;
  };
  Block* lists[classes];
  std::size_t cached_bytes;
  std::size_t limit;  // 0 until the thread's first slow path initialises it (nothing is cached before)
  std::size_t last_size;
  std::uint64_t system_allocations;
  std::byte* slab;        // the unused tail of this thread's current slab
  std::size_t slab_left;
  bool ready;  // initialised (limit set, thread-exit trim armed)
  bool dead;   // the thread is exiting: frees go straight to the heap
};
extern thread_local constinit FrameLists tls_frame_lists __attribute__((tls_model("initial-exec")));
void* frame_alloc_slow(std::size_t size);
void frame_free_slow(void* p, std::size_t size) noexcept;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Under sanitizers every frame is a fresh heap block, so a use after free of a frame is caught, not recycled.
inline void* frame_alloc(std::size_t size) {
  tls_frame_lists.last_size = size;
  ++tls_frame_lists.system_allocations;
  return ::operator new(size);
}
inline void frame_free(void* p, std::size_t size) noexcept { ::operator delete(p, size); }
inline constexpr bool frame_cache_enabled = false;
#else
inline constexpr bool frame_cache_enabled = true;
inline void* frame_alloc(std::size_t size) {
  FrameLists& fl = tls_frame_lists;
  fl.last_size = size;
  std::size_t c = (size - 1) / FrameLists::step;  // sizes are never 0 here
  if (c < FrameLists::classes) {
    if (FrameLists::Block* b = fl.lists[c]) {
      fl.lists[c] = b->next;
      fl.cached_bytes -= (c + 1) * FrameLists::step;
      return b;
    }
  }
  return frame_alloc_slow(size);
}
inline void frame_free(void* p, std::size_t size) noexcept {
  FrameLists& fl = tls_frame_lists;
  std::size_t c = (size - 1) / FrameLists::step;
  std::size_t bytes = (c + 1) * FrameLists::step;
  if (c < FrameLists::classes && fl.cached_bytes + bytes <= fl.limit) {
    auto* b = static_cast<FrameLists::Block*>(p);
    b->next = fl.lists[c];
    fl.lists[c] = b;
    fl.cached_bytes += bytes;
    return;
  }
  frame_free_slow(p, size);
}
#endif
// Blocks this thread's frame allocator could not take from its lists (carved from a slab, taken from the depot, or
// oversized frames from ::operator new): what "steady state allocates nothing" counts.
std::uint64_t frame_allocations() noexcept;
// Bytes this thread keeps in its free lists, and the cap (default 32 MiB; frees beyond it go to the depot).
std::size_t frame_cache_bytes() noexcept;
void set_frame_cache_limit(std::size_t bytes) noexcept;
// Hands this thread's cached blocks to the depot (for other threads to reuse).
void trim_frame_cache() noexcept;
// The size asked for by this thread's most recent frame allocation (how big a coroutine frame is: benches, budgets).
std::size_t last_frame_size() noexcept;

// Base for objects allocated from the frame allocator.
struct Pooled {
  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }
};

class TaskBase;
class PromiseBase;
class FutureCore;

// The per-thread slot through which a failed coroutine hands its exception to the code that resumes next.
void stash_exception(std::exception_ptr e) noexcept;
std::exception_ptr take_stashed_exception() noexcept;

// The task stepping on this thread (null outside a step).
extern thread_local constinit TaskBase* tls_current_task __attribute__((tls_model("initial-exec")));

// The non-template core of a task: what the loop, awaiters and diagnostics need. Defined in task.hpp's
// implementation (src/coro/task.cpp); the typed result lives in TaskState<T>.
class TaskBase {
 public:
  // --- used by Suspension (the protocol above)
  bool park(Suspension* s, std::coroutine_handle<> h);
  void wake_from(Suspension* s) noexcept;
  const std::string& cancel_message() const noexcept;

  // --- task API (Task<T> and AnyTask forward here)
  bool cancel(std::string msg);
  int cancelling() const noexcept { return cancel_requests_; }
  int uncancel() noexcept;
  bool done() const noexcept;
  // The default name "Task-<id>" is only made into a string when first asked for (a std::bad_alloc then
  // terminates, as name() is noexcept).
  const std::string& name() const noexcept;
  void set_name(std::string name);
  EventLoop& loop() const noexcept;
  // The await chain, top (the task's coroutine) to bottom (the leaf awaitable), one line each.
  void print_stack(std::ostream& os) const;

  // Debug mode only (asyncio keeps a task's creation traceback only then): where create_task was called.
  std::source_location created_at() const noexcept;

  // --- internals shared with the coroutine machinery. Laid out for the per-task budget (a server keeps a task per
  // connection): 72 bytes here, no vtable pointer (the typed hooks go through the future state's), 112 bytes for a
  // TaskState<void> in all.
  PromiseBase* frame_ = nullptr;         // innermost coroutine of this task (await chains)
  Suspension* leaf_ = nullptr;           // current suspension point, null while running or ready to run
  std::coroutine_handle<> resume_point_;  // the coroutine to resume at the next step
  int cancel_requests_ = 0;              // cancelling()
  std::uint16_t core_offset_ = 0;        // from the future state (FutureCore) back to here, see core()
  bool must_cancel_ : 1 = false;         // a cancellation waits for the next suspension point
  bool step_scheduled_ : 1 = false;
  bool started_ : 1 = false;
  bool finished_ : 1 = false;
  bool registered_ : 1 = false;          // in its loop's list of live tasks (all_tasks)
  // What only some tasks need lives out of line, allocated on first use: an idle task per connection then costs
  // 8 bytes here instead of three std::strings (96 bytes).
  struct Extras {
    std::string name;            // valid once named: set_name() or the first name() of a default-named task
    bool named = false;
    std::string cancel_message;  // of the last cancel()
    std::string created_by;      // debug mode: the creating task's await chain
    std::source_location created_at{};  // debug mode
  };
  Extras& extras();
  std::uint64_t id_ = 0;  // "Task-<id>", the loop's count of created tasks
  mutable std::unique_ptr<Extras> extras_;
  TaskBase* reg_prev_ = nullptr;  // the loop's list of live tasks (all_tasks)
  TaskBase* reg_next_ = nullptr;

  void schedule_step();
  void step();
  void retain() noexcept;   // counts on the task's future state
  void release() noexcept;
  // Destroys the coroutine frames of a pending task without running it and ends it cancelled (close_tasks).
  void teardown() noexcept;
  // The future side of this task: TaskState<T> derives from both, core_offset_ bytes before this base.
  FutureCore& core() noexcept { return *reinterpret_cast<FutureCore*>(reinterpret_cast<char*>(this) - core_offset_); }
  const FutureCore& core() const noexcept { return const_cast<TaskBase*>(this)->core(); }

 protected:
  TaskBase() = default;
  ~TaskBase() = default;
  // Called after the root coroutine finished: moves its result or exception into the future state and destroys
  // the frame (FutureCore::task_root_done, overridden by TaskState<T>). Or, when the task is torn down while
  // pending, destroys the frame (task_destroy_root).
  void on_root_done() noexcept;
  void destroy_root() noexcept;
  // Finishes the future side (cancelled if `e` is a CancelledError), leaves the loop's task list, drops the loop's
  // reference. TaskState<T> stores the value first.
  void complete(std::exception_ptr e) noexcept;
  std::coroutine_handle<> root_;
  friend struct TaskAccess;
};

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
    link_ |= failed_tag;
    stash_exception(std::current_exception());
  }
  bool failed() const noexcept { return (link_ & failed_tag) != 0; }
  // The exception of the coroutine that just failed (see unhandled_exception), once.
  static std::exception_ptr take_exception() noexcept { return take_stashed_exception(); }

  // Records where each co_await is (file, line, enclosing function) for await chains: one store per await.
#if defined(__has_builtin) && __has_builtin(__builtin_source_location)
  // Why a pointer rather than std::source_location::current(): g++ 12 keeps every class-type temporary of a
  // co_await expression in the coroutine frame (8 bytes per co_await, some twice), a scalar argument it does not.
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
  //   low bit 1:   a tulipa coroutine, by its promise (await chains follow these links);
  //   low bits 10: none, this is a task's root; the rest is the task;
  //   otherwise:   a foreign coroutine by its frame address (8-aligned at least), or 0 (not awaited yet).
  // Bit 2 says the coroutine ended with an exception.
  std::uintptr_t link_ = 0;
  static constexpr std::uintptr_t parent_tag = 1, task_tag = 2, failed_tag = 4, tags = 7;
  // The awaiting coroutine's promise when it is a tulipa coroutine (await chains), else null.
  PromiseBase* parent() const noexcept {
    return (link_ & parent_tag) ? reinterpret_cast<PromiseBase*>(link_ & ~tags) : nullptr;
  }
  std::coroutine_handle<> continuation() const noexcept {
    if (link_ & parent_tag) return std::coroutine_handle<PromiseBase>::from_promise(*parent());
    if (link_ & task_tag) return {};
    return std::coroutine_handle<>::from_address(reinterpret_cast<void*>(link_ & ~tags));
  }
  void set_task_root(TaskBase* t) noexcept { link_ = reinterpret_cast<std::uintptr_t>(t) | task_tag; }
  // The task this coroutine runs in, when that is known: the running task when this coroutine is its innermost
  // frame (the common case, O(1)); else the task at the root of its chain of tulipa callers (a coroutine resumed
  // by a foreign awaitable inside another task's step); null under a foreign caller.
  TaskBase* owning_task() const noexcept {
    TaskBase* t = tls_current_task;
    if (t && t->frame_ == this) return t;
    const PromiseBase* p = this;
    while (p->link_ & parent_tag) p = p->parent();
    return (p->link_ & task_tag) ? reinterpret_cast<TaskBase*>(p->link_ & ~tags) : nullptr;
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
inline void link_child(PromiseBase& child, std::coroutine_handle<> cont, std::coroutine_handle<Parent> parent) noexcept {
  // The frame is found from a promise as from_promise<PromiseBase> finds it, which is where the compiler put it
  // when the promise is at most 16-aligned (the frame's two function pointers come first); an over-aligned
  // promise is linked by its frame address instead (its await chain then stops there).
  if constexpr (std::is_base_of_v<PromiseBase, Parent> && alignof(Parent) <= 2 * sizeof(void*)) {
    PromiseBase& p = parent.promise();
    child.link_ = reinterpret_cast<std::uintptr_t>(&p) | PromiseBase::parent_tag;
    if (TaskBase* t = p.owning_task()) t->frame_ = &child;
  } else {
    child.link_ = reinterpret_cast<std::uintptr_t>(cont.address());
    if (TaskBase* t = tls_current_task) t->frame_ = &child;
  }
}

}  // namespace detail

// A lazy coroutine returning T. Move-only; destroying one that never ran destroys its frame without running it.
// Await it once (`co_await f()` or `co_await std::move(c)`), or give it to create_task().
template <class T>
class [[nodiscard]] Coro {
 public:
  using promise_type = detail::CoroPromise<T>;
  using value_type = T;
  using Handle = std::coroutine_handle<promise_type>;

  Coro() noexcept = default;
  explicit Coro(Handle h) noexcept : h_(h) {}
  Coro(Coro&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Coro& operator=(Coro&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Coro(const Coro&) = delete;
  Coro& operator=(const Coro&) = delete;
  ~Coro() { reset(); }

  // True while this object owns a coroutine that has not been awaited to completion.
  bool valid() const noexcept { return h_ && !h_.done(); }
  explicit operator bool() const noexcept { return valid(); }
  Handle release() noexcept { return std::exchange(h_, {}); }

  struct Awaiter {
    Handle h;
    bool await_ready() const {
      if (!h || h.done()) throw std::logic_error("tulipa::Coro awaited twice (or empty)");
      return false;
    }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
      detail::link_child(h.promise(), parent, parent);
      return h;
    }
    T await_resume() { return h.promise().take(); }
  };
  Awaiter operator co_await() & noexcept { return Awaiter{h_}; }
  Awaiter operator co_await() && noexcept { return Awaiter{h_}; }

 private:
  void reset() noexcept {
    if (h_) std::exchange(h_, {}).destroy();
  }
  Handle h_;
};

namespace detail {
template <class T>
Coro<T> CoroPromise<T>::get_return_object() noexcept {
  return Coro<T>(std::coroutine_handle<CoroPromise<T>>::from_promise(*this));
}
inline Coro<void> CoroPromise<void>::get_return_object() noexcept {
  return Coro<void>(std::coroutine_handle<CoroPromise<void>>::from_promise(*this));
}
}  // namespace detail

// Base of every leaf awaiter: see THE CANCELLATION PROTOCOL at the top of this file.
class Suspension {
 public:
  enum class Cancel { detached, forwarded, refused };

  Suspension() noexcept = default;
  // Awaiters may be moved before they suspend (g++ 12 moves the awaitable returned by await_transform), never after.
  Suspension(Suspension&&) noexcept {}
  Suspension& operator=(const Suspension&) = delete;

  // One line saying what is awaited ("sleep 1.5s", "Future<int> pending", "Lock.acquire"), for await chains.
  virtual void describe(std::ostream& os) const = 0;

 protected:
  ~Suspension() = default;

  // Records this awaiter as the current task's suspension point and `h` as the coroutine to resume. Returns false
  // if a cancellation is pending: then do not suspend (return false from await_suspend) and do not register.
  // Throws std::logic_error when called outside a task.
  bool park(std::coroutine_handle<> h) {
    detail::TaskBase* t = detail::tls_current_task;
    if (!t) throw std::logic_error("tulipa: awaiting a library awaitable outside a task (use create_task or run)");
    task_ = t;
    return t->park(this, h);
  }
  // The awaited event happened: resume the task at its next loop pass. Idempotent; ignored once cancelled.
  void wake() noexcept {
    if (state_ == State::parked) task_->wake_from(this);
  }
  // First thing in await_resume: throws CancelledError if this wait was cancelled.
  void check_cancelled() const {
    if (state_ == State::cancelled) throw CancelledError(task_->cancel_message());
  }
  // Opt-in to asyncio's rule for one awaitable: a cancel() that arrived after wake() but before the task resumed is
  // raised here, at this await, instead of at the task's next suspension point. Call it in await_resume after
  // check_cancelled(), once whatever the wake-up gave you is handed on or undone (a notification passed to another
  // waiter...). Throws CancelledError and consumes the pending cancellation if there is one; else does nothing.
  void raise_pending_cancel() const {
    if (task_ && task_->must_cancel_) {
      task_->must_cancel_ = false;
      throw CancelledError(task_->cancel_message());
    }
  }
  bool parked() const noexcept { return state_ == State::parked; }
  bool woken() const noexcept { return state_ == State::woken; }
  bool was_cancelled() const noexcept { return state_ == State::cancelled; }
  detail::TaskBase* task() const noexcept { return task_; }

  // The hook (see the protocol). Called only while parked and not woken.
  virtual Cancel on_cancel() noexcept = 0;

 private:
  friend class detail::TaskBase;
  enum class State : std::uint8_t { idle, parked, woken, cancelled };
  detail::TaskBase* task_ = nullptr;
  State state_ = State::idle;
};

}  // namespace tulipa
