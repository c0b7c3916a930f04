// ConcurrentCore: the state word of a ConcurrentFuture, waited on with the futex under it.
//
// Why a raw futex and not std::atomic::wait: waiting with a timeout (result(timeout), wait_for) needs FUTEX_WAIT's
// timeout, which C++20's atomic wait lacks. The "waiters" bit lets the loop side skip FUTEX_WAKE entirely when no
// thread sleeps yet (a caller that only polls done(), or a result that arrives before result() is called).
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>

#include "tulipa/threadsafe.hpp"

namespace tulipa::detail {

namespace {

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, const timespec* relative) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, relative, nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace

bool ConcurrentCore::wait_until(TimePoint deadline) const noexcept {
  using W = ConcurrentWord;
  for (;;) {
    std::uint32_t w = word_.load(std::memory_order_acquire);
    std::uint32_t o = w & W::outcome_mask;
    if (o == W::done || o == W::cancelled) return true;
    if (!(w & W::waiters)) {
      if (!word_.compare_exchange_weak(w, w | W::waiters, std::memory_order_acq_rel)) continue;
      w |= W::waiters;
    }
    if (deadline == TimePoint::max()) {
      futex_wait(&word_, w, nullptr);
      continue;
    }
    auto now = std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
    if (now >= deadline) return finished();
    auto left = (deadline - now).count();
    timespec ts{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
    futex_wait(&word_, w, &ts);
  }
}

void ConcurrentCore::finish(std::uint32_t outcome) noexcept {
  std::uint32_t old = word_.exchange(outcome, std::memory_order_acq_rel);
  if (old & ConcurrentWord::waiters) futex_wake_all(&word_);
}

bool ConcurrentCore::begin_complete() noexcept {
  using W = ConcurrentWord;
  std::uint32_t w = word_.load(std::memory_order_acquire);
  while ((w & W::outcome_mask) == W::pending) {
    if (word_.compare_exchange_weak(w, (w & W::waiters) | W::completing, std::memory_order_acq_rel)) return true;
  }
  return false;
}

void ConcurrentCore::publish() noexcept { finish(ConcurrentWord::done); }

bool ConcurrentCore::try_cancel() noexcept {
  using W = ConcurrentWord;
  std::uint32_t w = word_.load(std::memory_order_acquire);
  while ((w & W::outcome_mask) == W::pending) {
    if (word_.compare_exchange_weak(w, W::cancelled, std::memory_order_acq_rel)) {
      if (w & W::waiters) futex_wake_all(&word_);
      return true;
    }
  }
  return false;
}

void post_task_cancel(ConcurrentCore* st, void (*unref)(ConcurrentCore*) noexcept) noexcept {
  // Owns the reference the canceller took, whether the callback runs, is dropped by a closing loop, or never
  // leaves this thread.
  struct CancelTask {
    ConcurrentCore* st;
    void (*unref)(ConcurrentCore*) noexcept;
    CancelTask(ConcurrentCore* s, void (*u)(ConcurrentCore*) noexcept) noexcept : st(s), unref(u) {}
    CancelTask(CancelTask&& o) noexcept : st(std::exchange(o.st, nullptr)), unref(o.unref) {}
    ~CancelTask() {
      if (st) unref(st);
    }
    void operator()() noexcept {
      if (st->task_alive) st->task->cancel({});
    }
  };
  try {
    st->loop->call_soon_threadsafe(CancelTask(st, unref));
  } catch (...) {
    // The loop is closed: the runner's frame was (or will be) destroyed with it, which settles everything.
  }
}

void check_not_loop_thread(const ConcurrentCore& st) {
  if (running_loop() == st.loop) {
    throw std::logic_error("ConcurrentFuture: waiting on the loop's own thread would deadlock");
  }
}

}  // namespace tulipa::detail
