// The coroutine frame allocator's slow paths (the fast paths are inline in coro.hpp): per-thread free lists by size
// class, so that a task spawned per connection or per request reuses the frame (and task state) of one that
// finished, and steady state never allocates.
//
// Size classes are 16-byte steps up to 4 KiB (256 lists); bigger blocks go straight to the heap. A block keeps no
// header: C++ passes the size to the sized operator delete of a promise or class, so the class is known on free.
// Why slabs rather than ::operator new per block: malloc puts a 16-byte header before every block, and an idle
// connection of a streams server holds two such blocks (its task state and its handler's frame). Blocks are carved
// from 64 KiB slabs with a bump pointer, so a block costs its class size and the slab's pages are touched only as
// they are used.
//
// Where blocks go:
// - freed on any thread: onto that thread's list of the class (memory is memory; the block never needs to go home);
// - beyond the thread's limit (32 MiB by default, so that a burst of 100,000 tasks does not sit in one thread's
//   lists), when the thread exits, or on trim_frame_cache(): into the depot, a process-wide set of lists under a
//   mutex, which a thread's slow path takes from before it carves a new slab.
// Slab memory is therefore never handed back to the system: like the transports' pools, peak usage stays reserved
// for reuse. The depot is reached only on a thread's cache miss when the depot is not empty, and on overflow.
//
// The lists themselves are a constant-initialised thread_local (no guard on the fast path); a second, lazily
// touched thread_local moves the cached blocks to the depot when the thread exits.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

#include "tulipa/coro.hpp"

namespace tulipa::detail {

thread_local constinit FrameLists tls_frame_lists __attribute__((tls_model("initial-exec"))) = {};

namespace {

constexpr std::size_t kDefaultLimit = std::size_t(32) << 20;
constexpr std::size_t kSlabBytes = std::size_t(64) << 10;
constexpr std::size_t kAlign = FrameLists::step;  // blocks are 16-byte aligned: every size class is a multiple
static_assert(kAlign >= alignof(std::max_align_t));

constexpr std::size_t class_bytes(std::size_t c) noexcept { return (c + 1) * FrameLists::step; }

// The process-wide depot. Never destroyed (threads may exit after static destruction began); slabs are kept in a
// list so that leak checkers see them as reachable.
struct Depot {
  std::mutex mu;
  FrameLists::Block* lists[FrameLists::classes] = {};
  std::atomic<std::size_t> blocks{0};  // blocks in the lists: the slow path skips the lock when 0

  void put(FrameLists::Block* b, std::size_t c) noexcept {
    std::lock_guard lock(mu);
    b->next = lists[c];
    lists[c] = b;
    blocks.fetch_add(1, std::memory_order_relaxed);
  }
  FrameLists::Block* take(std::size_t c) noexcept {
    if (blocks.load(std::memory_order_relaxed) == 0) return nullptr;
    std::lock_guard lock(mu);
    FrameLists::Block* b = lists[c];
    if (b) {
      lists[c] = b->next;
      blocks.fetch_sub(1, std::memory_order_relaxed);
    }
    return b;
  }
  // Moves every list of `fl` here (one lock).
  void put_all(FrameLists& fl) noexcept {
    std::lock_guard lock(mu);
    for (std::size_t c = 0; c < FrameLists::classes; ++c) {
      while (FrameLists::Block* b = fl.lists[c]) {
        fl.lists[c] = b->next;
        b->next = lists[c];
        lists[c] = b;
        blocks.fetch_add(1, std::memory_order_relaxed);
      }
    }
    fl.cached_bytes = 0;
  }
};

Depot& depot() noexcept {
  static Depot* d = new Depot;  // deliberately immortal, see above
  return *d;
}

// The slabs, for reachability only: each slab's address is recorded in a small heap node.
struct SlabNode {
  void* slab;
  SlabNode* next;
};
std::atomic<SlabNode*> g_slabs{nullptr};

void record_slab(void* slab) {
  auto* n = new SlabNode{slab, g_slabs.load(std::memory_order_relaxed)};
  while (!g_slabs.compare_exchange_weak(n->next, n, std::memory_order_release, std::memory_order_relaxed)) {
  }
}

// Cuts the unused tail of the thread's slab into blocks (largest classes first) and hands them to `sink`.
template <class Sink>
void spill_slab(FrameLists& fl, Sink sink) noexcept {
  while (fl.slab_left >= FrameLists::step) {
    std::size_t bytes =
        fl.slab_left < class_bytes(FrameLists::classes - 1) ? fl.slab_left : class_bytes(FrameLists::classes - 1);
    std::size_t c = bytes / FrameLists::step - 1;
    auto* b = reinterpret_cast<FrameLists::Block*>(fl.slab);
    fl.slab += bytes;
    fl.slab_left -= bytes;
    sink(b, c);
  }
}

// A fresh block of class c from the thread's slab (a new slab when the current one is too short).
void* carve(FrameLists& fl, std::size_t c) {
  const std::size_t bytes = class_bytes(c);
  if (fl.slab_left < bytes) {
    auto* slab = static_cast<std::byte*>(::operator new(kSlabBytes, std::align_val_t(kAlign)));
    try {
      record_slab(slab);
    } catch (...) {
      ::operator delete(slab, std::align_val_t(kAlign));
      throw;
    }
    // The old slab's tail is not wasted: it joins this thread's lists.
    spill_slab(fl, [&fl](FrameLists::Block* b, std::size_t k) noexcept {
      b->next = fl.lists[k];
      fl.lists[k] = b;
      fl.cached_bytes += class_bytes(k);
    });
    fl.slab = slab;
    fl.slab_left = kSlabBytes;
  }
  void* p = fl.slab;
  fl.slab += bytes;
  fl.slab_left -= bytes;
  return p;
}

struct ThreadExit {
  bool armed = false;
  ~ThreadExit() {
    FrameLists& fl = tls_frame_lists;
    depot().put_all(fl);
    spill_slab(fl, [](FrameLists::Block* b, std::size_t c) noexcept { depot().put(b, c); });
    fl.limit = 0;  // blocks freed by later thread-exit destructors go straight to the depot
    fl.dead = true;
  }
};
thread_local ThreadExit tls_exit;

// First slow path of a thread: set the limit and arrange the hand-over at thread exit.
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
  if (c >= FrameLists::classes) return ::operator new(size);
  if (FrameLists::Block* b = depot().take(c)) return b;
  return carve(fl, c);
}

void frame_free_slow(void* p, std::size_t size) noexcept {
  FrameLists& fl = tls_frame_lists;
  std::size_t c = (size - 1) / FrameLists::step;
  if (c >= FrameLists::classes) {
    ::operator delete(p, size);
    return;
  }
  if (!fl.ready && !fl.dead) {  // first free on a thread that never allocated: cache it too
    init(fl);
    frame_free(p, size);
    return;
  }
  depot().put(static_cast<FrameLists::Block*>(p), c);
}

std::uint64_t frame_allocations() noexcept { return tls_frame_lists.system_allocations; }
std::size_t frame_cache_bytes() noexcept { return tls_frame_lists.cached_bytes; }
void set_frame_cache_limit(std::size_t bytes) noexcept {
  FrameLists& fl = tls_frame_lists;
  init(fl);
  fl.limit = bytes;
  if (fl.cached_bytes > bytes) depot().put_all(fl);
}
void trim_frame_cache() noexcept { depot().put_all(tls_frame_lists); }
std::size_t last_frame_size() noexcept { return tls_frame_lists.last_size; }

}  // namespace tulipa::detail
