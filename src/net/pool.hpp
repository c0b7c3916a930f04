// A per-thread pool of fixed-size blocks for per-connection objects (transports, write-queue chunks).
//
// Why: malloc adds a 16-byte header to every small object and its size classes round up; the pool packs blocks
// back to back in 64 KiB slabs, so a transport costs exactly its size. Freed blocks go on a free list and are
// reused by the next connection: accepting in steady state allocates nothing. Slabs are returned to the system
// when the thread exits. Blocks must be freed on the thread that allocated them (transports live on their loop's
// thread). Align: the blocks' alignment; an object that needs only 8 (no long double, no SSE member) saves the
// rounding to 16 (a 72-byte object then costs 72, not 80).
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace tulipa::detail {

template <std::size_t BlockSize, std::size_t SlabBytes = 64 * 1024, std::size_t Align = alignof(std::max_align_t)>
class FixedPool {
  static constexpr std::size_t align = Align;
  static_assert(align >= alignof(void*) && (align & (align - 1)) == 0);
  static constexpr std::size_t block = (BlockSize + align - 1) / align * align;
  static_assert(block <= SlabBytes);

 public:
  FixedPool() = default;
  FixedPool(const FixedPool&) = delete;
  FixedPool& operator=(const FixedPool&) = delete;
  ~FixedPool() {
    for (void* s : slabs_) ::operator delete(s, std::align_val_t(align));
  }

  void* allocate() {
    if (!free_) refill();
    Node* n = free_;
    free_ = n->next;
    return n;
  }
  void deallocate(void* p) noexcept {
    auto* n = static_cast<Node*>(p);
    n->next = free_;
    free_ = n;
  }

  // The pool of the calling thread.
  static FixedPool& local() {
    thread_local FixedPool pool;
    return pool;
  }

 private:
  struct Node {
    Node* next;
  };
  void refill() {
    auto* slab = static_cast<std::byte*>(::operator new(SlabBytes, std::align_val_t(align)));
    slabs_.push_back(slab);
    // Thread the blocks in address order, so consecutive connections sit next to each other.
    for (std::size_t i = SlabBytes / block; i-- > 0;) deallocate(slab + i * block);
  }

  Node* free_ = nullptr;
  std::vector<void*> slabs_;
};

}  // namespace tulipa::detail
