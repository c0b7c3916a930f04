// The coroutine frame allocator: per-thread free lists by size class, so that a task spawned per connection or per
// request reuses the frame (and task state) of one that finished, and steady state never calls ::operator new.
//
// Size classes are 64-byte steps up to 4 KiB (64 lists); bigger blocks go straight to the heap. A block keeps no
// header: C++ passes the size to the sized operator delete of a promise or class, so the class is known on free.
// The lists hold at most `limit` bytes per thread (32 MiB by default) so that a burst of 100,000 tasks does not
// pin its peak memory forever; beyond that, frees return memory to the heap.
#include <cstddef>
#include <cstdint>
#include <new>

#include "tulipa/coro.hpp"

namespace tulipa::detail {
namespace {

constexpr std::size_t kStep = 64;
constexpr std::size_t kClasses = 64;  // up to 4 KiB

struct FreeBlock {
  FreeBlock* next;
};

struct FrameCache {
  FreeBlock* lists[kClasses] = {};
  std::size_t cached_bytes = 0;
  std::size_t limit = std::size_t(32) << 20;
  std::uint64_t system_allocations = 0;
  bool alive = true;

  void trim() noexcept {
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = lists[c]) {
        lists[c] = b->next;
        ::operator delete(static_cast<void*>(b), (c + 1) * kStep);
      }
    }
    cached_bytes = 0;
  }
  ~FrameCache() {
    trim();
    alive = false;  // frames freed by later thread-exit destructors go straight to the heap
  }
};

thread_local FrameCache tls_cache;

inline std::size_t class_of(std::size_t n) noexcept { return (n + kStep - 1) / kStep - 1; }

}  // namespace

void* frame_alloc(std::size_t size) {
  std::size_t c = class_of(size == 0 ? 1 : size);
  FrameCache& fc = tls_cache;
  if (c < kClasses) {
    if (FreeBlock* b = fc.lists[c]) {
      fc.lists[c] = b->next;
      fc.cached_bytes -= (c + 1) * kStep;
      return b;
    }
    ++fc.system_allocations;
    return ::operator new((c + 1) * kStep);
  }
  ++fc.system_allocations;
  return ::operator new(size);
}

void frame_free(void* p, std::size_t size) noexcept {
  if (!p) return;
  std::size_t c = class_of(size == 0 ? 1 : size);
  FrameCache& fc = tls_cache;
  if (c < kClasses) {
    std::size_t bytes = (c + 1) * kStep;
    if (fc.alive && fc.cached_bytes + bytes <= fc.limit) {
      auto* b = static_cast<FreeBlock*>(p);
      b->next = fc.lists[c];
      fc.lists[c] = b;
      fc.cached_bytes += bytes;
      return;
    }
    ::operator delete(p, bytes);
    return;
  }
  ::operator delete(p, size);
}

std::uint64_t frame_allocations() noexcept { return tls_cache.system_allocations; }
std::size_t frame_cache_bytes() noexcept { return tls_cache.cached_bytes; }
void set_frame_cache_limit(std::size_t bytes) noexcept {
  tls_cache.limit = bytes;
  if (tls_cache.cached_bytes > bytes) tls_cache.trim();
}
void trim_frame_cache() noexcept { tls_cache.trim(); }

}  // namespace tulipa::detail
