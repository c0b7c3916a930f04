// call_soon_threadsafe's queue and the loop's wake-up eventfd.
//
// Producers (any thread) append under a mutex; the loop swaps the whole batch out once per pass (two vectors that
// trade places, so steady state allocates nothing). The wake-up is a write to an eventfd, made only when the loop
// is asleep in the selector and no wake-up is already on its way; a loop that is awake picks the batch up at its
// next pass without any system call. The protocol (Dekker-style, seq_cst on both sides):
//   loop:     sleeping = true;  if (has_items) don't sleep;  select(...);  sleeping = false
//   producer (all under the queue lock, which close() also takes):
//             push; has_items = true;  if (sleeping && !wake_pending.exchange(true)) write(eventfd)
// At least one side sees the other's store, so an item is never left waiting while the loop sleeps.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <source_location>
#include <vector>

#include "tulipa/callback.hpp"

namespace tulipa::detail {

class ThreadsafeQueue {
 public:
  struct Entry {
    Callback fn;
    std::source_location where;
  };

  ThreadsafeQueue();  // creates the eventfd; throws std::system_error
  ~ThreadsafeQueue();
  ThreadsafeQueue(const ThreadsafeQueue&) = delete;
  ThreadsafeQueue& operator=(const ThreadsafeQueue&) = delete;

  int wakeup_fd() const noexcept { return efd_; }
  // Any thread. Throws std::logic_error after close().
  void push(Callback fn, std::source_location where);
  // Loop thread: the batch pushed since the last call (the returned vector is reused: consume it before the next
  // call).
  std::vector<Entry>& take();
  bool has_items() const noexcept { return has_items_.load(std::memory_order_seq_cst); }
  // Loop thread, around the selector call. Returns false if items are waiting (then do not sleep).
  bool prepare_sleep() noexcept;
  void end_sleep() noexcept { sleeping_.store(false, std::memory_order_relaxed); }
  // Loop thread: the eventfd was readable.
  void drain_wakeup() noexcept;
  // Loop thread: the eventfd was read by other means (an io_uring read): a new wake-up may be sent.
  void woken() noexcept { wake_pending_.store(false, std::memory_order_release); }
  // Refuse further pushes; drops what is queued.
  void close() noexcept;
  std::uint64_t wakeups_sent() const noexcept { return wakeups_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::vector<Entry> incoming_;
  std::vector<Entry> batch_;
  bool closed_ = false;
  std::atomic<bool> has_items_{false};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> wake_pending_{false};
  std::atomic<std::uint64_t> wakeups_{0};
  int efd_ = -1;
};

}  // namespace tulipa::detail
