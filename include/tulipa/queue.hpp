// Queues for tasks on one loop: asyncio's Queue, PriorityQueue and LifoQueue (3.13 semantics, shutdown included).
// Loop thread only, like everything in sync.hpp.
//
//   tulipa::Queue<Job> q(100);              // maxsize 100; 0 means unbounded
//   co_await q.put(job);  Job j = co_await q.get();  q.task_done();  co_await q.join();
//
// Waiting: get() waits while the queue is empty, put() while it is full, each in a FIFO of waiters whose nodes live
// in the waiting coroutine frames (no allocation per wait; get() and put() are small coroutines whose frames come
// from the frame allocator's free lists). As in asyncio, a waiter that is woken re-checks the queue when it runs, so
// an item can be taken by a get_nowait() in between and the waiter then waits again.
//
// Cancellation: a get()/put() cancelled while it waits leaves the queue of waiters and raises CancelledError; no
// item is taken or lost. One cancelled after it was woken (an item arrived / a slot freed) but before it ran raises
// too, and hands its wake-up to the next waiter in line (asyncio 3.13); so does one torn down while woken.
//
// Shutdown (3.13): shutdown() makes put() and put_nowait() raise QueueShutDown, wakes every waiting putter (they
// raise QueueShutDown) and every getter; get() raises QueueShutDown once the queue is empty. shutdown(true) also
// drops the items still queued (counting them as done for join()), so getters raise at once.
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
#include "tulipa/detail/queue.hpp"
#include "tulipa/sync.hpp"

namespace tulipa {

class QueueEmpty : public std::runtime_error {
 public:
  QueueEmpty() : std::runtime_error("queue is empty") {}
};
class QueueFull : public std::runtime_error {
 public:
  QueueFull() : std::runtime_error("queue is full") {}
};
class QueueShutDown : public std::runtime_error {
 public:
  QueueShutDown() : std::runtime_error("queue is shut down") {}
};

template <class T, class Store>
class BasicQueue : public detail::QueueCore {
 public:
  using value_type = T;

  explicit BasicQueue(std::size_t maxsize = 0) : QueueCore(maxsize) {}

  std::size_t qsize() const noexcept { return store_.items.size(); }
  bool empty() const noexcept { return empty_now(); }
  // Always false for an unbounded queue (maxsize 0).
  bool full() const noexcept { return full_now(); }

  // Waits while full. QueueShutDown if shut down (before or while waiting).
  Coro<void> put(T item) {
    while (full_now()) {
      if (is_shutdown()) throw QueueShutDown();
      co_await wait_putter();
    }
    put_nowait(std::move(item));
  }
  // QueueFull when full, QueueShutDown when shut down.
  void put_nowait(T item) {
    check_put();
    store_.push(std::move(item));
    after_put();
  }
  // Waits while empty. QueueShutDown once empty and shut down.
  Coro<T> get() {
    while (empty_now()) {
      if (is_shutdown()) throw QueueShutDown();
      co_await wait_getter();
    }
    co_return get_nowait();
  }
  // QueueEmpty when empty (QueueShutDown when empty and shut down).
  T get_nowait() {
    check_get();
    T v = store_.pop();
    after_get();
    return v;
  }
  // task_done(): one item taken by get() is fully processed; std::logic_error if called more often than items were
  // put. join(): waits until every item put was processed.
  using QueueCore::join;
  using QueueCore::task_done;

  // See the top of this file.
  void shutdown(bool immediate = false) {
    std::size_t dropped = 0;
    if (immediate) {
      dropped = store_.items.size();
      store_.items.clear();
    }
    shutdown_core(immediate, dropped);
  }

 private:
  std::size_t size() const noexcept override { return store_.items.size(); }
  Store store_;
};

template <class T>
using Queue = BasicQueue<T, detail::FifoStore<T>>;
template <class T>
using LifoQueue = BasicQueue<T, detail::LifoStore<T>>;
// Smallest first by `Compare` (std::less: like Python's heapq, the lowest (priority, item) pair comes out first).
template <class T, class Compare = std::less<T>>
using PriorityQueue = BasicQueue<T, detail::HeapStore<T, Compare>>;

}  // namespace tulipa
