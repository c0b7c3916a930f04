// EventLoop::Impl: the loop's state. Private; the phases of run_once are in run_once.cpp, the rest in event_loop.cpp.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "loop/handle_node.hpp"
#include "loop/heap_trim.hpp"
#include "loop/signals.hpp"
#include "loop/threadsafe_queue.hpp"
#include "loop/timer_heap.hpp"
#include "selectors/fd_map.hpp"
#include "selectors/uring_ops.hpp"
#include "tulipa/loop.hpp"

namespace tulipa {

namespace detail {
// add_reader/add_writer's watcher: one per fd that has a reader or a writer callback.
struct ReaderWriter final : IoWatcher {
  EventLoop::Impl* loop = nullptr;
  int fd = -1;
  Callback reader;
  Callback writer;
  // A callback replaced or removed while one of this fd's callbacks runs (a reader removing itself, say) is
  // retired here and destroyed only when the call returned: its captures may still be in use.
  bool calling = false;
  std::vector<Callback> retired;
  void on_io(Events ready) override;
  void drop(Callback& slot);
  Events interest() const noexcept {
    return (reader ? Events::read : Events::none) | (writer ? Events::write : Events::none);
  }
};

// One per watched fd, 16 bytes (the loop's share of an idle connection). An add_reader/add_writer fd's watcher is
// its ReaderWriter, owned by the entry (`owns_rw`); a transport's watcher is borrowed. Move-only: moving hands the
// ReaderWriter over, and an entry that owns one deletes it (FdMap::erase move-assigns an empty entry over it).
struct FdEntry {
  IoWatcher* watcher = nullptr;
  Events events = Events::none;  // what the selector polls for
  bool registered = false;       // known to the selector
  bool owns_rw = false;          // watcher is a ReaderWriter this entry made (add_reader/add_writer)

  FdEntry() = default;
  explicit FdEntry(IoWatcher* w) noexcept : watcher(w) {}
  explicit FdEntry(std::unique_ptr<ReaderWriter> rw) noexcept : watcher(rw.release()), owns_rw(true) {}
  FdEntry(FdEntry&& o) noexcept
      : watcher(std::exchange(o.watcher, nullptr)),
        events(std::exchange(o.events, Events::none)),
        registered(std::exchange(o.registered, false)),
        owns_rw(std::exchange(o.owns_rw, false)) {}
  FdEntry& operator=(FdEntry&& o) noexcept {
    if (this != &o) {
      reset_rw();
      watcher = std::exchange(o.watcher, nullptr);
      events = std::exchange(o.events, Events::none);
      registered = std::exchange(o.registered, false);
      owns_rw = std::exchange(o.owns_rw, false);
    }
    return *this;
  }
  ~FdEntry() { reset_rw(); }

  bool occupied() const noexcept { return watcher != nullptr; }  // FdMap's test for a live slot
  // The fd's ReaderWriter, or null when the fd belongs to a transport (or the loop's own watchers).
  ReaderWriter* rw() const noexcept { return owns_rw ? static_cast<ReaderWriter*>(watcher) : nullptr; }
  // Hands the ReaderWriter over (to be freed later); the entry keeps pointing at it as its watcher, unowned.
  std::unique_ptr<ReaderWriter> release_rw() noexcept {
    std::unique_ptr<ReaderWriter> out(rw());
    owns_rw = false;
    return out;
  }

 private:
  void reset_rw() noexcept {
    if (owns_rw) delete static_cast<ReaderWriter*>(watcher);
    owns_rw = false;
  }
};
static_assert(sizeof(FdEntry) <= 16, "the loop's per-fd entry is budgeted at 16 bytes (issue 5)");

// The loop's own watchers (the wake-up eventfd and the signal pipe) are ordinary IoWatchers.
struct WakeupWatcher final : IoWatcher {
  EventLoop::Impl* loop = nullptr;
  void on_io(Events) override;
};
struct SignalWatcher final : IoWatcher {
  EventLoop::Impl* loop = nullptr;
  void on_io(Events) override;
};
// On io_uring operations the wake-up eventfd is not polled but read through the ring: one 8-byte read always in
// flight (reading the eventfd resets it), armed again from its completion. `value` is the read's buffer.
struct WakeupRead final : UringTarget {
  EventLoop::Impl* loop = nullptr;
  UringOps* ops = nullptr;
  std::uint64_t value = 0;
  void arm();
  void on_completion(unsigned op, int res, unsigned flags, bool teardown) noexcept override;
};
// On io_uring operations the signal self-pipe is read through the ring too: from the first add_signal_handler on,
// one read of up to 64 signal numbers is always in flight (a number no handler claims any more is dropped, as
// SignalSet::drain drops it), armed again from its completion. `bytes` is the read's buffer and the pipe is the
// SignalSet's: both live as long as the loop, which destroys its ring (delivering the read's last completion) first.
struct SignalRead final : UringTarget {
  EventLoop::Impl* loop = nullptr;
  UringOps* ops = nullptr;
  bool armed = false;  // a read is in flight (else, after a refused arm, the pipe is polled by signal_watcher)
  unsigned char bytes[64];
  void arm();
  void on_completion(unsigned op, int res, unsigned flags, bool teardown) noexcept override;
};
}  // namespace detail

struct EventLoop::Impl final : detail::LoopReserves {
  explicit Impl(EventLoop& self, LoopOptions options);
  ~Impl();

  // What a burst left beyond the reserves (heap_trim.hpp): the handle pool, the timer heap, the fd table, the
  // selector's tables. Asked each time the loop is about to sleep; given back at most once a second.
  bool over_reserve() const noexcept override;
  std::size_t give_back() noexcept override;

  // scheduling
  detail::HandleNode* schedule_ready(Callback fn, std::source_location where);
  detail::HandleNode* enqueue_ready(Callback fn, std::source_location where);  // without collect_threadsafe()
  detail::HandleNode* schedule_timer(TimePoint when, Callback fn, std::source_location where);
  void cancel(detail::HandleNode* node) noexcept;
  TimePoint now() const noexcept { return clock->now(); }

  // the phases
  void run_once();
  Duration compute_timeout() noexcept;
  void poll(Duration timeout);
  void collect_threadsafe();
  void collect_due_timers();
  void run_ready();
  void run_node(detail::HandleNode* node);
  void dispatch_io(IoWatcher* watcher, int fd, Events ready);
  void signal_arrived(int signum);  // schedules its handler (if it still has one) as a ready callback
  void report_slow(std::string_view what, std::source_location where, Duration took);

  // fds
  void set_interest(int fd, detail::FdEntry& entry, Events events);
  void forget_fd(int fd, detail::FdEntry& entry);
  detail::ReaderWriter& reader_writer(int fd);
  void update_reader_writer(int fd);

  void check_open(const char* what) const;
  // Debug mode: throws std::logic_error when called from a thread other than the one running the loop.
  void check_thread(const char* what) const;

  EventLoop& self;
  std::unique_ptr<Selector> selector;
  SteadyClock steady;
  Clock* clock;
  detail::HandlePool pool{this};
  detail::ReadyQueue ready;
  detail::TimerHeap timers;
  detail::FdMap<detail::FdEntry> fds;  // the selectors' per-fd table; an entry stays put until its fd is erased
  std::unique_ptr<detail::ThreadsafeQueue> threadsafe;
  detail::WakeupWatcher wakeup_watcher;
  detail::WakeupRead wakeup_read;  // used instead of wakeup_watcher on io_uring operations
  detail::SignalSet signals;
  detail::SignalWatcher signal_watcher;
  detail::SignalRead signal_read;  // used instead of signal_watcher on io_uring operations
  // ReaderWriters whose fd lost its last callback while one of them was running: freed after the dispatch.
  std::vector<std::unique_ptr<detail::ReaderWriter>> retired_rw;
  ExceptionHandler exception_handler;
  LogHandler log_handler;

  std::atomic<bool> running{false};
  std::atomic<std::thread::id> thread_id{};  // the thread running the loop (run_forever, run_once); none: not running
  bool stopping = false;
  bool closed = false;
  bool debug = false;
  Duration slow_callback = std::chrono::milliseconds(100);

  // Last member: destroyed first, newest first, while the rest of the loop still exists.
  struct Extensions {
    std::vector<std::pair<const void*, std::unique_ptr<LoopExtension>>> items;
    ~Extensions() {
      while (!items.empty()) items.pop_back();
    }
  } extensions;
};

}  // namespace tulipa
