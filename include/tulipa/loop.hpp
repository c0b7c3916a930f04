// EventLoop: asyncio's event loop (PEP 3156) for one thread.
//
// One pass of the loop (run_once) has these phases, in this order; docs/architecture.md draws them:
//   1. timeout: zero if callbacks are ready or stop() was called, else until the earliest timer, else forever;
//   2. poll: select() on the selector, then dispatch I/O readiness to the fd's watcher right away
//      (add_reader/add_writer callbacks and transports run here);
//   3. timers: every timer whose deadline has passed moves to the ready queue, in (deadline, scheduling) order;
//   4. ready: run exactly the callbacks that were in the ready queue when this phase began. A callback scheduled
//      while they run (call_soon from a callback) waits for the next pass, so no callback can starve I/O.
// This is the only place where callbacks are called; everything else only adds them to the ready queue.
//
// Threads: an EventLoop belongs to the thread that runs it. The only members that may be called from another
// thread are call_soon_threadsafe() and stop_threadsafe(). No global default loop exists: code finds the loop it
// runs on through get_running_loop(), which is set only while a loop runs on this thread.
//
// Lifetimes: callbacks are owned by the loop from the moment they are scheduled until they ran or were cancelled;
// their captures are destroyed right after they run (or when cancelled). Handles must not outlive the loop.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>

#include "tulipa/callback.hpp"
#include "tulipa/clock.hpp"
#include "tulipa/handle.hpp"
#include "tulipa/selector.hpp"

namespace tulipa {

class EventLoop;

// What the exception handler is told (asyncio's context dict, as a struct).
struct ErrorContext {
  std::string message{};
  std::exception_ptr exception{};       // may be null
  std::source_location scheduled_at{};  // where the failing callback was scheduled from, when known
  std::string task{};                   // name of the task involved, when any
  int fd = -1;                          // the file descriptor involved, when any
};

using ExceptionHandler = std::function<void(EventLoop&, const ErrorContext&)>;
// Where the loop writes warnings (slow callbacks in debug mode, the default exception handler's report).
using LogHandler = std::function<void(std::string_view line)>;

// Something that wants readiness of one fd: transports implement it; add_reader/add_writer use a built-in one.
// on_io runs in the poll phase. It may watch/unwatch any fd, including its own, and may destroy itself after
// unwatching: the loop never touches a watcher again once unwatch() returned.
class IoWatcher {
 public:
  virtual void on_io(Events ready) = 0;
  // EventLoop::close() found this watcher still watching its fd (after the extensions were told, before pending
  // callbacks are dropped): release what it owns. A transport ends its connection here (connection_lost, the fd
  // closed, the transport and its protocol freed), so that a connection still open when its loop goes away is
  // neither leaked nor left half-open. It may unwatch and destroy itself; scheduling still works (what it schedules
  // is dropped with the rest).
  virtual void on_loop_close() noexcept {}

 protected:
  ~IoWatcher() = default;
};

// Per-loop state of the layers above the loop (the task registry, the default executor, live children, ...):
// one object per type T, made on first use by EventLoop::extension<T>() (with T(EventLoop&) or T()), told when the
// loop closes, and destroyed with the loop, newest first. This is how higher layers keep state "on the loop"
// without the loop knowing them, and without registries keyed by a loop's address (which a later loop can reuse).
class LoopExtension {
 public:
  virtual ~LoopExtension() = default;
  // Called by close(), newest extension first, before pending callbacks are dropped; scheduling still works.
  virtual void on_close(EventLoop& /*loop*/) noexcept {}
};

namespace detail {
template <class T>
inline constexpr char extension_key = 0;  // one address per extension type
}

struct LoopOptions {
  std::unique_ptr<Selector> selector{};  // null: make_selector(backend)
  // Used when `selector` is null. automatic: TULIPA_LOOP=uring|epoll|poll, else epoll. io_uring refused by the kernel
  // (a seccomp profile, kernel.io_uring_disabled) falls back to epoll with one line on stderr per process;
  // selector().name() says which backend the loop got.
  LoopBackend backend = LoopBackend::automatic;
  Clock* clock = nullptr;  // null: the monotonic clock. Not owned; must outlive the loop.
  // null: debug mode is on when the environment has TULIPA_DEBUG=1.
  const bool* debug = nullptr;
};

class EventLoop {
 public:
  EventLoop();
  explicit EventLoop(LoopOptions options);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // --- running and stopping
  // Runs until stop(). Throws std::logic_error if the loop is closed or already running (on any thread), or if
  // another loop is already running on this thread.
  void run_forever();
  // One pass of the loop (the four phases above). For tests and embedding; run_forever() is a loop around it.
  void run_once();
  // Asks run_forever() to return after the current pass: callbacks already ready still run, then it returns.
  void stop() noexcept;
  // stop() from another thread.
  void stop_threadsafe();
  bool is_running() const noexcept;
  // Tells the extensions (LoopExtension::on_close: pending tasks are reported and torn down there, for instance),
  // then every watcher still watching (IoWatcher::on_loop_close: open transports end there), then drops pending
  // callbacks without running them, forgets every watched fd (without closing it), removes the signal handlers
  // and refuses new work. The selector and the wake-up fd are freed with the loop.
  // Throws std::logic_error while running. Idempotent.
  void close();
  bool is_closed() const noexcept;

  // --- time
  TimePoint time() const noexcept;
  Clock& clock() const noexcept;

  // --- scheduling (loop thread only). call_soon's callbacks and call_soon_threadsafe's share one FIFO: a callback
  // queued from another thread before a call_soon runs before it. In debug mode, calling these from a thread other
  // than the one running the loop throws std::logic_error (asyncio's RuntimeError "Non-thread-safe operation ...").
  Handle call_soon(Callback fn, std::source_location where = std::source_location::current());
  TimerHandle call_later(Duration delay, Callback fn, std::source_location where = std::source_location::current());
  TimerHandle call_at(TimePoint when, Callback fn, std::source_location where = std::source_location::current());
  // From any thread. Wakes the loop if it sleeps in the selector; makes no system call when it is awake already.
  // Throws std::logic_error once the loop is closed.
  void call_soon_threadsafe(Callback fn, std::source_location where = std::source_location::current());

  // --- readiness of any fd (asyncio's add_reader & co). One reader and one writer callback per fd; adding again
  // replaces the previous callback. remove_* return whether a callback was registered. The fd is not closed.
  void add_reader(int fd, Callback fn);
  bool remove_reader(int fd);
  void add_writer(int fd, Callback fn);
  bool remove_writer(int fd);

  // --- the watcher interface transports use (one watcher per fd, not shared with add_reader/add_writer).
  // `events` may be Events::none: the fd stays known to the loop but is not polled.
  void watch(int fd, Events events, IoWatcher* watcher);
  void update_watch(int fd, Events events);
  void unwatch(int fd);

  // --- signals: the handler runs as an ordinary callback on this loop (never inside the signal handler).
  // Only one loop in the process can handle a given signal. SIGKILL/SIGSTOP and invalid numbers throw
  // std::invalid_argument. remove_signal_handler restores the default disposition and returns whether one was set.
  void add_signal_handler(int signum, Callback fn);
  bool remove_signal_handler(int signum);

  // --- errors
  void set_exception_handler(ExceptionHandler handler);  // null restores the default
  const ExceptionHandler& get_exception_handler() const noexcept;
  void default_exception_handler(const ErrorContext& context);
  void call_exception_handler(const ErrorContext& context) noexcept;
  void set_log_handler(LogHandler handler);  // null restores the default (stderr)
  void log(std::string_view line) noexcept;

  // --- debug mode
  void set_debug(bool on) noexcept;
  bool get_debug() const noexcept;
  Duration slow_callback_duration() const noexcept;
  void set_slow_callback_duration(Duration d) noexcept;

  // --- per-loop state of higher layers (loop thread only)
  template <class T>
  T& extension() {
    static_assert(std::is_base_of_v<LoopExtension, T>);
    const void* key = &detail::extension_key<T>;
    if (LoopExtension* e = find_extension(key)) return static_cast<T&>(*e);
    std::unique_ptr<T> made;
    if constexpr (std::is_constructible_v<T, EventLoop&>)
      made = std::make_unique<T>(*this);
    else
      made = std::make_unique<T>();
    T& ref = *made;
    add_extension(key, std::move(made));
    return ref;
  }
  // The extension of type T if one was made, else null.
  template <class T>
  T* find_extension() noexcept {
    return static_cast<T*>(find_extension(&detail::extension_key<T>));
  }

  // --- introspection (tests, benchmarks, diagnostics)
  std::size_t ready_count() const noexcept;
  std::size_t timer_count() const noexcept;
  // What the loop keeps for reuse: the nodes of its callback pool (one per callback scheduled, about 112 bytes),
  // the timer heap's slots and the fd table's. A burst grows them; when the loop is about to sleep (at most once a
  // second) it gives back what exceeds a bounded reserve (1,024 free nodes, 1,024 timer slots, the fd pages above
  // the highest fd in use but one), and so does its selector.
  struct Reserves {
    std::size_t callback_nodes;  // held by the pool
    std::size_t callbacks_scheduled;
    std::size_t timer_slots;
    std::size_t fd_slots;
  };
  Reserves reserves() const noexcept;
  // How many times call_soon_threadsafe had to wake the loop with a system call.
  std::uint64_t threadsafe_wakeups() const noexcept;
  Selector& selector() noexcept;

  struct Impl;

 private:
  friend class Handle;
  LoopExtension* find_extension(const void* key) noexcept;
  void add_extension(const void* key, std::unique_ptr<LoopExtension> ext);
  std::unique_ptr<Impl> impl_;
};

// The loop running on this thread; throws std::runtime_error("no running event loop") when none is.
EventLoop& get_running_loop();
// The loop running on this thread, or null.
EventLoop* running_loop() noexcept;

}  // namespace tulipa
