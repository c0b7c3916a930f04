// Internals of coro.hpp: the frame allocator every coroutine frame, future state and task state comes from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#include "tulipa/detail/sanitizers.hpp"

namespace tulipa::detail {

// --- the frame allocator: per-thread size classes (16-byte steps up to 4 KiB) with free lists, so spawning a task
// per request reuses the frames of finished ones; larger frames go to ::operator new. Coroutine frames, future and
// task states all come from here. Blocks are carved from 64 KiB slabs and carry no header (the sized delete tells
// the class), so a 208-byte frame costs 208 bytes, not malloc's 224. A block may be freed on any thread: it joins
// that thread's lists; what a thread cannot keep (beyond its limit, or when it exits) goes to a process-wide depot
// that every thread refills from. After a burst, slabs whose blocks are all free again are given back beyond a
// bounded reserve (release_frame_memory, called by the loop about to sleep).
// The fast paths (pop / push on a list) are inline: they are the cost of every co_await of a coroutine.
struct FrameLists {
  // 16-byte steps (malloc's alignment, so no block is padded beyond what alignment needs): a connection's task
  // state and frame are its biggest objects. The lists cost 2 KiB of thread-local storage.
  static constexpr std::size_t step = 16;
  static constexpr std::size_t classes = 256;  // up to 4 KiB
  struct Block {
    Block* next;
  };
  Block* lists[classes];
  std::size_t cached_bytes;
  std::size_t limit;  // 0 until the thread's first slow path initialises it (nothing is cached before)
  std::size_t last_size;
  std::uint64_t system_allocations;
  std::byte* slab;  // the unused tail of this thread's current slab
  std::size_t slab_left;
  bool ready;  // initialised (limit set, thread-exit trim armed)
  bool dead;   // the thread is exiting: frees go straight to the heap
};
extern thread_local constinit FrameLists tls_frame_lists __attribute__((tls_model("initial-exec")));
void* frame_alloc_slow(std::size_t size);
void frame_free_slow(void* p, std::size_t size) noexcept;

// Gives a block of `size` bytes from ::operator new back to the heap: sized where the compiler has sized
// deallocation (g++, clang >= 19), unsized where it does not (clang 16 to 18 without -fsized-deallocation).
inline void heap_free(void* p, [[maybe_unused]] std::size_t size) noexcept {
#if defined(__cpp_sized_deallocation)
  ::operator delete(p, size);
#else
  ::operator delete(p);
#endif
}

#if TULIPA_ASAN || TULIPA_TSAN
// Under sanitizers every frame is a fresh heap block, so a use after free of a frame is caught, not recycled.
inline void* frame_alloc(std::size_t size) {
  tls_frame_lists.last_size = size;
  ++tls_frame_lists.system_allocations;
  return ::operator new(size);
}
inline void frame_free(void* p, std::size_t size) noexcept { heap_free(p, size); }
inline constexpr bool frame_cache_enabled = false;
#else
inline constexpr bool frame_cache_enabled = true;
inline void* frame_alloc(std::size_t size) {
  FrameLists& fl = tls_frame_lists;
  fl.last_size = size;
  std::size_t c = (size - 1) / FrameLists::step;  // sizes are never 0 here
  if (c < FrameLists::classes) {
    if (FrameLists::Block* b = fl.lists[c]) {
      fl.lists[c] = b->next;
      fl.cached_bytes -= (c + 1) * FrameLists::step;
      return b;
    }
  }
  return frame_alloc_slow(size);
}
inline void frame_free(void* p, std::size_t size) noexcept {
  FrameLists& fl = tls_frame_lists;
  std::size_t c = (size - 1) / FrameLists::step;
  std::size_t bytes = (c + 1) * FrameLists::step;
  if (c < FrameLists::classes && fl.cached_bytes + bytes <= fl.limit) {
    auto* b = static_cast<FrameLists::Block*>(p);
    b->next = fl.lists[c];
    fl.lists[c] = b;
    fl.cached_bytes += bytes;
    return;
  }
  frame_free_slow(p, size);
}
#endif
// Blocks this thread's frame allocator could not take from its lists (carved from a slab, taken from the depot, or
// oversized frames from ::operator new): what "steady state allocates nothing" counts.
std::uint64_t frame_allocations() noexcept;
// Bytes this thread keeps in its free lists, and the cap (default 32 MiB; frees beyond it go to the depot).
std::size_t frame_cache_bytes() noexcept;
void set_frame_cache_limit(std::size_t bytes) noexcept;
// Hands this thread's cached blocks to the depot (for other threads to reuse).
void trim_frame_cache() noexcept;
// What a burst may leave cached: a thread keeps up to this much in its lists, and the depot keeps up to this much of
// slabs whose blocks are all free; release_frame_memory gives back the rest.
inline constexpr std::size_t frame_reserve_bytes = std::size_t(1) << 20;
// Whether release_frame_memory has work: this thread caches more than the reserve, or enough was freed into the
// depot since its last release.
bool frame_memory_to_release() noexcept;
// Hands this thread's lists to the depot if they hold more than the reserve, then frees every slab whose blocks are
// all free in the depot, beyond the reserve. Returns the bytes freed (to the heap: malloc_trim returns them to the
// system). The loop calls it about to sleep, with its heap trim (loop/heap_trim.hpp).
std::size_t release_frame_memory() noexcept;
// Bytes of slabs the frame allocator holds, process-wide (tests, benchmarks).
std::size_t frame_slab_bytes() noexcept;
// The size asked for by this thread's most recent frame allocation (how big a coroutine frame is: benches, budgets).
std::size_t last_frame_size() noexcept;

// Base for objects allocated from the frame allocator.
struct Pooled {
  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }
};

}  // namespace tulipa::detail
