// The loop's unit of scheduling: a pooled, intrusive node holding one callback. Private to the loop.
//
// A node is in exactly one of these places: the free list, the ready queue, or the timer heap (its heap_index
// says where). Nodes are never returned to the system while the loop lives; a Handle names a node plus the
// generation it had when scheduled, and every release bumps the generation, so a stale Handle is harmless.
#pragma once

#include <cstdint>
#include <memory>
#include <source_location>
#include <vector>

#include "tulipa/callback.hpp"
#include "tulipa/clock.hpp"
#include "tulipa/loop.hpp"

namespace tulipa::detail {

enum class NodeState : std::uint8_t { free, ready, timer, running, cancelled };

struct HandleNode {
  static constexpr std::uint32_t no_heap_index = ~std::uint32_t{0};

  Callback fn;
  HandleNode* next = nullptr;
  EventLoop::Impl* loop = nullptr;
  TimePoint when{};
  std::source_location where{};
  std::uint32_t generation = 0;
  std::uint32_t heap_index = no_heap_index;
  NodeState state = NodeState::free;
};

// A free list over chunks of nodes: scheduling a callback allocates nothing once the pool has grown to the
// loop's high-water mark of simultaneously scheduled callbacks.
class HandlePool {
 public:
  explicit HandlePool(EventLoop::Impl* loop) : loop_(loop) {}
  HandlePool(const HandlePool&) = delete;
  HandlePool& operator=(const HandlePool&) = delete;

  HandleNode* acquire() {
    if (!free_) grow();
    HandleNode* n = free_;
    free_ = n->next;
    n->next = nullptr;
    ++in_use_;
    return n;
  }
  // Destroys the callback (and so its captures) and puts the node back. The callback's destructor may schedule
  // more work; the node is only linked into the free list after it returned.
  void release(HandleNode* n) noexcept {
    n->fn.reset();
    ++n->generation;
    n->state = NodeState::free;
    n->heap_index = HandleNode::no_heap_index;
    n->next = free_;
    free_ = n;
    --in_use_;
  }
  std::size_t in_use() const noexcept { return in_use_; }
  std::size_t capacity() const noexcept { return chunks_.size() * chunk_size; }

 private:
  static constexpr std::size_t chunk_size = 256;
  void grow() {
    auto chunk = std::make_unique<HandleNode[]>(chunk_size);
    for (std::size_t i = chunk_size; i-- > 0;) {
      chunk[i].loop = loop_;
      chunk[i].next = free_;
      free_ = &chunk[i];
    }
    chunks_.push_back(std::move(chunk));
  }

  EventLoop::Impl* loop_;
  HandleNode* free_ = nullptr;
  std::size_t in_use_ = 0;
  std::vector<std::unique_ptr<HandleNode[]>> chunks_;
};

// FIFO of ready nodes, linked through HandleNode::next: pushing and popping never allocate.
class ReadyQueue {
 public:
  void push(HandleNode* n) noexcept {
    n->next = nullptr;
    if (tail_)
      tail_->next = n;
    else
      head_ = n;
    tail_ = n;
    ++size_;
  }
  HandleNode* pop() noexcept {
    HandleNode* n = head_;
    head_ = n->next;
    if (!head_) tail_ = nullptr;
    n->next = nullptr;
    --size_;
    return n;
  }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

 private:
  HandleNode* head_ = nullptr;
  HandleNode* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace tulipa::detail
