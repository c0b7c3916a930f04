// Internals of tulipa/queue.hpp (the library's, not part of the contract).
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "tulipa/coro.hpp"
#include "tulipa/sync.hpp"

namespace tulipa::detail {

// The part of a queue that does not depend on the item type: waiters, the unfinished-task count, shutdown.
class QueueCore {
 public:
  explicit QueueCore(std::size_t maxsize) noexcept : maxsize_(maxsize) { finished_.set(); }
  QueueCore(const QueueCore&) = delete;
  QueueCore& operator=(const QueueCore&) = delete;

  std::size_t maxsize() const noexcept { return maxsize_; }
  bool is_shutdown() const noexcept { return shutdown_; }
  std::size_t unfinished_tasks() const noexcept { return unfinished_; }
  std::size_t getters_waiting() const noexcept { return getters_.size(); }
  std::size_t putters_waiting() const noexcept { return putters_.size(); }

  void task_done();
  Event::Wait join() noexcept;

  // One side's waiter. `ok()` says whether the queue can now serve it (not empty / not full); a woken waiter that is
  // torn down before it ran passes its wake-up to the next one in line when the queue can serve it.
  class [[nodiscard]] Wait final : public Waiter {
   public:
    Wait(QueueCore& q, WaitList& list, bool (*can_serve)(const QueueCore&) noexcept, const char* what) noexcept
        : q_(&q), list_(&list), can_serve_(can_serve), what_(what) {}
    Wait(Wait&&) noexcept = default;
    ~Wait();
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume();
    void describe(std::ostream& os) const override;

   private:
    Cancel on_cancel() noexcept override {
      list_->remove(*this);
      return Cancel::detached;
    }
    QueueCore* q_;
    WaitList* list_;
    bool (*can_serve_)(const QueueCore&) noexcept;
    const char* what_;
    bool resumed_ = false;
  };

 protected:
  ~QueueCore() = default;
  virtual std::size_t size() const noexcept = 0;
  bool empty_now() const noexcept { return size() == 0; }
  bool full_now() const noexcept { return maxsize_ > 0 && size() >= maxsize_; }
  static bool not_empty(const QueueCore& q) noexcept { return !q.empty_now(); }
  static bool not_full(const QueueCore& q) noexcept { return !q.full_now(); }
  Wait wait_getter() noexcept { return Wait(*this, getters_, &not_empty, "Queue.get"); }
  Wait wait_putter() noexcept { return Wait(*this, putters_, &not_full, "Queue.put"); }
  static void wake_next(WaitList& list) noexcept;
  // Bookkeeping around the container operations of the typed queue.
  void check_put() const;     // QueueShutDown, QueueFull
  void after_put() noexcept;  // counts the task, wakes a getter
  void check_get() const;     // QueueShutDown when empty and shut down, else QueueEmpty when empty
  void after_get() noexcept { wake_next(putters_); }
  // shutdown(); for immediate, the typed queue drops its items first and says how many it dropped.
  void shutdown_core(bool immediate, std::size_t dropped) noexcept;

  WaitList getters_;
  WaitList putters_;

 private:
  std::size_t maxsize_;
  std::size_t unfinished_ = 0;
  Event finished_;
  bool shutdown_ = false;
};

// Storage policies: FIFO (a ring), LIFO (vector), priority (a binary min-heap: the smallest item first, as heapq).
// None of them allocates once it has reached its peak size (std::deque would allocate and free a block every few
// hundred items as the queue moves).
template <class T>
class Ring {
 public:
  Ring() noexcept = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    clear();
    if (slots_) std::allocator<T>().deallocate(slots_, cap_);
  }
  std::size_t size() const noexcept { return size_; }
  void push_back(T v) {
    if (size_ == cap_) grow();
    std::construct_at(slots_ + ((head_ + size_) & (cap_ - 1)), std::move(v));
    ++size_;
  }
  T pop_front() {
    T* p = slots_ + head_;
    T v = std::move(*p);
    std::destroy_at(p);
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
    return v;
  }
  void clear() noexcept {
    while (size_ > 0) {
      std::destroy_at(slots_ + head_);
      head_ = (head_ + 1) & (cap_ - 1);
      --size_;
    }
  }

 private:
  void grow() {
    std::size_t cap = cap_ ? cap_ * 2 : 8;  // a power of two
    T* slots = std::allocator<T>().allocate(cap);
    for (std::size_t i = 0; i < size_; ++i) {
      T* from = slots_ + ((head_ + i) & (cap_ - 1));
      std::construct_at(slots + i, std::move(*from));
      std::destroy_at(from);
    }
    if (slots_) std::allocator<T>().deallocate(slots_, cap_);
    slots_ = slots;
    cap_ = cap;
    head_ = 0;
  }
  T* slots_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

template <class T>
struct FifoStore {
  Ring<T> items;
  void push(T v) { items.push_back(std::move(v)); }
  T pop() { return items.pop_front(); }
};
template <class T>
struct LifoStore {
  std::vector<T> items;
  void push(T v) { items.push_back(std::move(v)); }
  T pop() {
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
};
template <class T, class Compare>
struct HeapStore {
  std::vector<T> items;
  Compare less;
  void push(T v) {
    items.push_back(std::move(v));
    std::push_heap(items.begin(), items.end(), greater());
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(), greater());
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  auto greater() const {
    return [this](const T& a, const T& b) { return less(b, a); };
  }
};

}  // namespace tulipa::detail
