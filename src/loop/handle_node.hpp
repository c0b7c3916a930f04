// The loop's unit of scheduling: a pooled, intrusive node holding one callback. Private to the loop.
//
// A node is in exactly one of these places: the free list, the ready queue, or the timer heap (its heap_index
// says where). A Handle names a node by its slot number in the pool plus the generation the node had when scheduled;
// every release bumps the generation, so a stale Handle is harmless, and a Handle whose node's chunk was given back
// finds no node at all.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <source_location>
#include <stdexcept>
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
  TimePoint when{};
  std::source_location where{};
  std::uint32_t slot = 0;  // its number in the pool, which Handles keep
  std::uint32_t generation = 0;
  std::uint32_t heap_index = no_heap_index;
  NodeState state = NodeState::free;
};

// A free list over chunks of 256 nodes: scheduling a callback allocates nothing once the pool has grown to the
// loop's high-water mark of simultaneously scheduled callbacks.
//
// Memory comes back: a burst (10,000 accepts, each a connection_made to call) grows the pool to its peak, and
// give_back() frees every chunk whose nodes are all free beyond a reserve of `reserve_nodes` free nodes (so churn
// around a steady load does not free and allocate a chunk every second). The loop calls it when it is about to
// sleep, at most once a second (loop/heap_trim.hpp). The hot path stays one pop and one push: give_back() finds the
// free chunks by scanning the nodes' states, then rebuilds the free list lowest chunk first, so that what is
// scheduled next fills the low chunks and leaves the high ones to empty for the next give-back.
//
// Handles hold the slot number, never a pointer: find() tells a slot of a given-back chunk (null). A chunk made
// again at a given-back chunk's place starts its nodes' generations past the old ones, so no stale Handle matches.
class HandlePool {
 public:
  static constexpr std::size_t chunk_size = 256;
  static constexpr std::size_t reserve_nodes = 1024;                  // 4 chunks, about 112 KiB
  static constexpr std::uint32_t max_slots = std::uint32_t{1} << 31;  // a Handle keeps 31 bits of slot

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

  // The node in `slot`, or null when its chunk was given back.
  HandleNode* find(std::uint32_t slot) const noexcept {
    const std::size_t c = slot / chunk_size;
    return c < chunks_.size() && chunks_[c] ? &chunks_[c][slot % chunk_size] : nullptr;
  }
  EventLoop::Impl* loop() const noexcept { return loop_; }

  std::size_t in_use() const noexcept { return in_use_; }
  std::size_t capacity() const noexcept { return live_chunks_ * chunk_size; }

  // Whether give_back() may free something: more free nodes than the reserve and a chunk, and the pool changed
  // since the last give-back (one that found every chunk pinned by a node in use is not repeated while idle).
  bool over_reserve() const noexcept {
    return capacity() - in_use_ >= reserve_nodes + chunk_size &&
           (in_use_ != seen_in_use_ || capacity() != seen_capacity_);
  }
  // Frees the chunks whose nodes are all free, highest first, while the free nodes left stay at least the reserve.
  // Returns the bytes freed.
  std::size_t give_back() noexcept {
    seen_in_use_ = in_use_;
    seen_capacity_ = capacity();
    std::size_t free_nodes = capacity() - in_use_;
    std::size_t freed = 0;
    for (std::size_t c = chunks_.size(); c-- > 0 && free_nodes >= reserve_nodes + chunk_size;) {
      HandleNode* chunk = chunks_[c].get();
      if (!chunk || !all_free(chunk)) continue;
      std::uint32_t next = 0;
      for (std::size_t i = 0; i < chunk_size; ++i) next = std::max(next, chunk[i].generation + 1);
      try {
        if (next_generation_.size() <= c) next_generation_.resize(c + 1, 0);
      } catch (const std::bad_alloc&) {
        break;  // the chunk stays: its generations could not be kept
      }
      next_generation_[c] = next;
      chunks_[c].reset();
      --live_chunks_;
      free_nodes -= chunk_size;
      freed += chunk_size * sizeof(HandleNode);
    }
    while (!chunks_.empty() && !chunks_.back()) chunks_.pop_back();  // (next_generation_ keeps their floors)
    // The free list again, lowest chunk and node first (also when nothing was freed: the next give-back may).
    free_ = nullptr;
    for (std::size_t c = chunks_.size(); c-- > 0;) {
      HandleNode* chunk = chunks_[c].get();
      if (!chunk) continue;
      for (std::size_t i = chunk_size; i-- > 0;) {
        if (chunk[i].state != NodeState::free) continue;
        chunk[i].next = free_;
        free_ = &chunk[i];
      }
    }
    seen_capacity_ = capacity();
    return freed;
  }

 private:
  static bool all_free(const HandleNode* chunk) noexcept {
    for (std::size_t i = 0; i < chunk_size; ++i)
      if (chunk[i].state != NodeState::free) return false;
    return true;
  }
  void grow() {
    // The first given-back place, else a new one at the end.
    std::size_t c = 0;
    while (c < chunks_.size() && chunks_[c]) ++c;
    if ((c + 1) * chunk_size > max_slots) throw std::length_error("event loop: too many scheduled callbacks");
    if (c == chunks_.size()) chunks_.emplace_back();
    const std::uint32_t first_generation = c < next_generation_.size() ? next_generation_[c] : 0;
    auto chunk = std::make_unique<HandleNode[]>(chunk_size);
    for (std::size_t i = chunk_size; i-- > 0;) {
      chunk[i].slot = static_cast<std::uint32_t>(c * chunk_size + i);
      chunk[i].generation = first_generation;
      chunk[i].next = free_;
      free_ = &chunk[i];
    }
    chunks_[c] = std::move(chunk);
    ++live_chunks_;
  }

  EventLoop::Impl* loop_;
  HandleNode* free_ = nullptr;
  std::size_t in_use_ = 0;
  std::size_t live_chunks_ = 0;
  std::vector<std::unique_ptr<HandleNode[]>> chunks_;  // null where a chunk was given back
  std::vector<std::uint32_t> next_generation_;         // per chunk place: the generation a new chunk there starts at
  std::size_t seen_in_use_ = ~std::size_t{0};          // the pool at the last give_back()
  std::size_t seen_capacity_ = 0;
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
