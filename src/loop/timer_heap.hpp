// The timer heap: a binary min-heap ordered by (deadline, scheduling sequence), so timers with the same deadline
// fire in the order they were scheduled (libuv orders its timers the same way).
//
// Unlike asyncio, which leaves cancelled timers in its heap and compacts it when they are the majority, each node
// remembers its index here and cancel() removes it at once in O(log n): cancelled timers never pile up. The keys
// live in the heap array itself, so sifting compares without touching the nodes (fewer cache misses with a
// million timers); only the moved node's index is written back.
#pragma once

#include <algorithm>
#include <cstdint>
#include <new>
#include <vector>

#include "loop/handle_node.hpp"

namespace tulipa::detail {

class TimerHeap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  HandleNode* top() const noexcept { return heap_.front().node; }
  TimePoint top_when() const noexcept { return TimePoint(Duration(heap_.front().when)); }

  void push(HandleNode* node) {
    heap_.push_back(Entry{node->when.time_since_epoch().count(), next_seq_++, node});
    sift_up(heap_.size() - 1);
  }
  HandleNode* pop() noexcept {
    HandleNode* n = heap_.front().node;
    remove_at(0);
    return n;
  }
  void remove(HandleNode* node) noexcept { remove_at(node->heap_index); }

  // After a burst of timers (a deadline per connection of 10,000): the array shrinks to twice what is left, down to
  // `reserve_entries`, when what is left is under a quarter of it. Returns the bytes freed.
  static constexpr std::size_t reserve_entries = 1024;  // 24 KiB
  std::size_t capacity() const noexcept { return heap_.capacity(); }
  bool over_reserve() const noexcept {
    return heap_.capacity() > reserve_entries && heap_.size() < heap_.capacity() / 4;
  }
  std::size_t give_back() noexcept {
    if (!over_reserve()) return 0;
    const std::size_t before = heap_.capacity();
    try {
      std::vector<Entry> smaller;
      smaller.reserve(std::max(reserve_entries, 2 * heap_.size()));
      smaller.assign(heap_.begin(), heap_.end());  // the same order: each node's heap_index stays true
      heap_.swap(smaller);
    } catch (const std::bad_alloc&) {  // keep the big one
    }
    return (before - heap_.capacity()) * sizeof(Entry);
  }

 private:
  struct Entry {
    std::int64_t when;
    std::uint64_t seq;
    HandleNode* node;
    bool before(const Entry& o) const noexcept { return when < o.when || (when == o.when && seq < o.seq); }
  };

  void place(std::size_t i, const Entry& e) noexcept {
    heap_[i] = e;
    e.node->heap_index = static_cast<std::uint32_t>(i);
  }
  void sift_up(std::size_t i) noexcept {
    Entry e = heap_[i];
    while (i > 0) {
      std::size_t parent = (i - 1) / 2;
      if (!e.before(heap_[parent])) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, e);
  }
  void sift_down(std::size_t i) noexcept {
    Entry e = heap_[i];
    const std::size_t n = heap_.size();
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap_[child + 1].before(heap_[child])) ++child;
      if (!heap_[child].before(e)) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, e);
  }
  void remove_at(std::size_t i) noexcept {
    heap_[i].node->heap_index = HandleNode::no_heap_index;
    const std::size_t last = heap_.size() - 1;
    if (i != last) {
      heap_[i] = heap_[last];
      heap_.pop_back();
      if (i > 0 && heap_[i].before(heap_[(i - 1) / 2]))
        sift_up(i);
      else
        sift_down(i);
    } else {
      heap_.pop_back();
    }
  }

  std::vector<Entry> heap_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace tulipa::detail
