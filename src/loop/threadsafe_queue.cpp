#include "loop/threadsafe_queue.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace tulipa::detail {

ThreadsafeQueue::ThreadsafeQueue() {
  efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

ThreadsafeQueue::~ThreadsafeQueue() {
  close();
  if (efd_ >= 0) ::close(efd_);
}

void ThreadsafeQueue::push(Callback fn, std::source_location where) {
  // The wake-up is decided and written under the lock too: close() takes the lock, so once it returned no producer
  // is still about to touch the flags or write to an eventfd that may be closed (and its number reused).
  std::lock_guard lock(mu_);
  if (closed_) throw std::logic_error("call_soon_threadsafe: the event loop is closed");
  incoming_.push_back(Entry{std::move(fn), where});
  has_items_.store(true, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst) && !wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t one = 1;
    // EAGAIN only if the counter would overflow: then the loop is certainly woken already.
    [[maybe_unused]] ssize_t r = ::write(efd_, &one, sizeof one);
  }
}

std::vector<ThreadsafeQueue::Entry>& ThreadsafeQueue::take() {
  batch_.clear();
  std::lock_guard lock(mu_);
  incoming_.swap(batch_);
  has_items_.store(false, std::memory_order_seq_cst);
  return batch_;
}

bool ThreadsafeQueue::prepare_sleep() noexcept {
  sleeping_.store(true, std::memory_order_seq_cst);
  if (has_items_.load(std::memory_order_seq_cst)) {
    sleeping_.store(false, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void ThreadsafeQueue::drain_wakeup() noexcept {
  std::uint64_t value;
  while (::read(efd_, &value, sizeof value) == sizeof value) {
  }
  wake_pending_.store(false, std::memory_order_release);
}

void ThreadsafeQueue::close() noexcept {
  std::vector<Entry> dropped;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    dropped.swap(incoming_);
    has_items_.store(false, std::memory_order_seq_cst);
  }
  // `dropped` is destroyed here, outside the lock: a callback's destructor may take locks of its own.
}

}  // namespace tulipa::detail
