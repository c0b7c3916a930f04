// The coroutine frame allocator's slow paths (the fast paths are inline in coro.hpp): per-thread free lists by size
// class, so that a task spawned per connection or per request reuses the frame (and task state) of one that
// finished, and steady state never calls ::operator new.
//
// Size classes are 32-byte steps up to 4 KiB (128 lists); bigger blocks go straight to the heap. A block keeps no
// header: C++ passes the size to the sized operator delete of a promise or class, so the class is known on free.
// The lists hold at most `limit` bytes per thread (32 MiB by default) so that a burst of 100,000 tasks does not
// pin its peak memory forever; beyond that, frees return memory to the heap. The lists themselves are a
// constant-initialised thread_local (no guard on the fast path); a second, lazily touched thread_local returns
// the cached blocks to the heap when the thread exits.
#include <cstddef>
#include <cstdint>
#include <new>

#include "tulipa/coro.hpp"

namespace tulipa::detail {

thread_local constinit FrameLists tls_frame_lists __attribute__((tls_model("initial-exec"))) = {};

namespace {

constexpr std::size_t kDefaultLimit = std::size_t(32) << 20;

void trim(FrameLists& fl) noexcept {
  for (std::size_t c = 0; c < FrameLists::classes; ++c) {
    while (FrameLists::Block* b = fl.lists[c]) {
      fl.lists[c] = b->next;
      ::operator delete(static_cast<void*>(b), (c + 1) * FrameLists::step);
    }
  }
  fl.cached_bytes = 0;
}

struct ThreadExit {
  bool armed = false;
  ~ThreadExit() {
    FrameLists& fl = tls_frame_lists;
    trim(fl);
    fl.limit = 0;  // frames freed by later thread-exit destructors go straight to the heap
    fl.dead = true;
  }
};
thread_local ThreadExit tls_exit;

// First slow path of a thread: set the limit and arrange the trim at thread exit.
inline void init(FrameLists& fl) noexcept {
  if (!fl.ready && !fl.dead) {
    fl.ready = true;
    fl.limit = kDefaultLimit;
    tls_exit.armed = true;  // constructs the thread_local, registering its destructor
  }
}

}  // namespace

void* frame_alloc_slow(std::size_t size) {
  FrameLists& fl = tls_frame_lists;
  init(fl);
  ++fl.system_allocations;
  std::size_t c = (size - 1) / FrameLists::step;
  if (c < FrameLists::classes) return ::operator new((c + 1) * FrameLists::step);
  return ::operator new(size);
}

void frame_free_slow(void* p, std::size_t size) noexcept {
  FrameLists& fl = tls_frame_lists;
  std::size_t c = (size - 1) / FrameLists::step;
  if (c < FrameLists::classes) {
    std::size_t bytes = (c + 1) * FrameLists::step;
    if (!fl.ready && !fl.dead) {  // first free on a thread that never allocated: cache it too
      init(fl);
      frame_free(p, size);
      return;
    }
    ::operator delete(p, bytes);
    return;
  }
  ::operator delete(p, size);
}

std::uint64_t frame_allocations() noexcept { return tls_frame_lists.system_allocations; }
std::size_t frame_cache_bytes() noexcept { return tls_frame_lists.cached_bytes; }
void set_frame_cache_limit(std::size_t bytes) noexcept {
  FrameLists& fl = tls_frame_lists;
  init(fl);
  fl.limit = bytes;
  if (fl.cached_bytes > bytes) trim(fl);
}
void trim_frame_cache() noexcept { trim(tls_frame_lists); }
std::size_t last_frame_size() noexcept { return tls_frame_lists.last_size; }

}  // namespace tulipa::detail
