// A per-thread pool of fixed-size blocks for per-connection objects (transports, stream connections).
//
// Why: malloc adds a 16-byte header to every small object and its size classes round up; the pool packs blocks
// back to back in 64 KiB slabs, so a transport costs exactly its size. Freed blocks go back to their slab and are
// reused by the next connection: accepting in steady state allocates nothing.
//
// Memory comes back: a slab whose blocks are all free is unmapped, unless the pool's free blocks would then number
// fewer than `reserve_bytes` worth (a bounded reserve, so churn around a steady count of connections does not map
// and unmap a slab at every turn). Slabs are mmap'd at an address aligned to their size, so a block finds its slab
// by masking its address; the slab's header (its free list and count of blocks in use) sits at its start. Blocks
// are handed out from the slab that was most recently given one back, and fresh slabs are carved as they are used
// (a page is touched only when a block on it is). What is left is unmapped when the thread exits.
//
// Blocks must be freed on the thread that allocated them (transports live on their loop's thread). Align: the
// blocks' alignment; an object that needs only 8 (no long double, no SSE member) saves the rounding to 16 (a
// 72-byte object then costs 72, not 80).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>

#include "tulipa/detail/sanitizers.hpp"
#if TULIPA_ASAN
#include <sanitizer/lsan_interface.h>
#endif

namespace tulipa::detail {

template <std::size_t BlockSize, std::size_t SlabBytes = 64 * 1024, std::size_t Align = alignof(std::max_align_t)>
class FixedPool {
  static constexpr std::size_t align = Align;
  static_assert(align >= alignof(void*) && (align & (align - 1)) == 0);
  static_assert((SlabBytes & (SlabBytes - 1)) == 0 && SlabBytes >= 4096, "slabs are aligned to their size");
  static constexpr std::size_t block = (BlockSize + align - 1) / align * align;

  struct Node {
    Node* next;
  };
  struct Slab {
    Node* free;            // blocks given back
    std::uint32_t live;    // blocks in use
    std::uint32_t carved;  // blocks ever handed out (the rest, after them, were never touched)
    Slab* prev;            // in the list of slabs with a block to give, or of full slabs
    Slab* next;
  };
  static constexpr std::size_t first = (sizeof(Slab) + align - 1) / align * align;
  static constexpr std::size_t per_slab = (SlabBytes - first) / block;
  static_assert(per_slab >= 1);

 public:
  // Free blocks kept mapped, in bytes of slabs: at least one slab's worth.
  static constexpr std::size_t reserve_bytes = 256 * 1024;
  static constexpr std::size_t reserve_blocks = (reserve_bytes / SlabBytes) * per_slab;

  FixedPool() = default;
  FixedPool(const FixedPool&) = delete;
  FixedPool& operator=(const FixedPool&) = delete;
  ~FixedPool() {
    for (Slab* list : {open_, full_}) {
      while (list) {
        Slab* next = list->next;
        unmap_slab(list);
        list = next;
      }
    }
  }

  void* allocate() {
    if (!open_) push(open_, map_slab());
    Slab* s = open_;
    void* p;
    if (s->free) {
      p = s->free;
      s->free = s->free->next;
    } else {
      p = reinterpret_cast<std::byte*>(s) + first + std::size_t{s->carved} * block;
      ++s->carved;
    }
    ++s->live;
    --free_blocks_;
    if (!has_room(s)) {
      unlink(open_, s);
      push(full_, s);
    }
    return p;
  }

  void deallocate(void* p) noexcept {
    Slab* s = slab_of(p);
    if (!has_room(s)) {
      unlink(full_, s);
      push(open_, s);
    } else if (open_ != s) {
      unlink(open_, s);  // to the front: the next allocation reuses this slab's warm block
      push(open_, s);
    }
    auto* n = static_cast<Node*>(p);
    n->next = s->free;
    s->free = n;
    --s->live;
    ++free_blocks_;
    if (s->live == 0 && free_blocks_ >= per_slab + reserve_blocks) {
      unlink(open_, s);
      free_blocks_ -= per_slab;
      --slabs_;
      unmap_slab(s);
    }
  }

  // Slabs mapped (tests, benchmarks).
  std::size_t slabs() const noexcept { return slabs_; }

  // The pool of the calling thread.
  static FixedPool& local() {
    thread_local FixedPool pool;
    return pool;
  }

 private:
  static bool has_room(const Slab* s) noexcept { return s->free != nullptr || s->carved < per_slab; }
  static Slab* slab_of(void* p) noexcept {
    return reinterpret_cast<Slab*>(reinterpret_cast<std::uintptr_t>(p) & ~(std::uintptr_t{SlabBytes} - 1));
  }
  static void push(Slab*& list, Slab* s) noexcept {
    s->prev = nullptr;
    s->next = list;
    if (list) list->prev = s;
    list = s;
  }
  static void unlink(Slab*& list, Slab* s) noexcept {
    if (s->prev) {
      s->prev->next = s->next;
    } else {
      list = s->next;
    }
    if (s->next) s->next->prev = s->prev;
  }
  // A slab aligned to its size: map twice the size, keep the aligned part, unmap the rest.
  Slab* map_slab() {
    void* m = ::mmap(nullptr, 2 * SlabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    const auto base = reinterpret_cast<std::uintptr_t>(m);
    const std::uintptr_t start = (base + SlabBytes - 1) & ~(std::uintptr_t{SlabBytes} - 1);
    if (start > base) ::munmap(m, start - base);
    if (start + SlabBytes < base + 2 * SlabBytes) {
      ::munmap(reinterpret_cast<void*>(start + SlabBytes), base + 2 * SlabBytes - (start + SlabBytes));
    }
    auto* s = new (reinterpret_cast<void*>(start)) Slab{nullptr, 0, 0, nullptr, nullptr};
#if TULIPA_ASAN
    // LeakSanitizer does not scan mmap'd memory: what a live block points to must not count as leaked.
    __lsan_register_root_region(s, SlabBytes);
#endif
    free_blocks_ += per_slab;
    ++slabs_;
    return s;
  }

  static void unmap_slab(Slab* s) noexcept {
#if TULIPA_ASAN
    __lsan_unregister_root_region(s, SlabBytes);
#endif
    ::munmap(s, SlabBytes);
  }

  Slab* open_ = nullptr;  // slabs with a block to give, the most recently given back first
  Slab* full_ = nullptr;
  std::size_t free_blocks_ = 0;
  std::size_t slabs_ = 0;
};

}  // namespace tulipa::detail
