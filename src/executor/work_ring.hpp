// WorkRing: the executor's FIFO of queued callables, a growable ring buffer.
//
// Why not std::deque: it allocates and frees a block every few hundred items as the queue moves, so a pool under
// steady load would allocate forever. The ring grows by doubling when full and never shrinks, so once it has seen
// its peak depth, queuing allocates nothing. Not thread-safe: the executor guards it with its mutex.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include "tulipa/callback.hpp"

namespace tulipa::detail {

class WorkRing {
 public:
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  void push(Callback fn) {
    if (size_ == cap_) grow();
    slots_[(head_ + size_) & (cap_ - 1)] = std::move(fn);
    ++size_;
  }
  // Precondition: !empty().
  Callback pop() noexcept {
    Callback fn = std::move(slots_[head_]);
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
    return fn;
  }

 private:
  void grow() {
    std::size_t cap = cap_ ? cap_ * 2 : 16;
    auto slots = std::make_unique<Callback[]>(cap);
    for (std::size_t i = 0; i < size_; ++i) slots[i] = std::move(slots_[(head_ + i) & (cap_ - 1)]);
    slots_ = std::move(slots);
    cap_ = cap;
    head_ = 0;
  }

  std::unique_ptr<Callback[]> slots_;
  std::size_t cap_ = 0;  // a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace tulipa::detail
