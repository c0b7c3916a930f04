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
// The depot is reached only on a thread's cache miss when the depot is not empty, and on overflow.
//
// Giving memory back (release_frame_memory, which the loop calls about to sleep after a burst, at most once a second:
// loop/heap_trim.hpp): a thread caching more than frame_reserve_bytes hands its lists to the depot; the depot then
// counts its free bytes per slab (the slabs are kept sorted by address, so a block's slab is a binary search away),
// and every slab whose blocks are all free there is unlinked from the lists and freed, beyond frame_reserve_bytes of
// them kept for the next burst. A slab with a block still in use, or in some thread's lists, or with an uncarved tail
// (a thread's current slab) is not all free there, so it stays. A burst leaves behind what its survivors pin.
//
// The lists themselves are a constant-initialised thread_local (no guard on the fast path); a second, lazily
// touched thread_local moves the cached blocks to the depot when the thread exits.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <new>
#include <vector>

#include "tulipa/coro.hpp"

namespace tulipa::detail {

thread_local constinit FrameLists tls_frame_lists __attribute__((tls_model("initial-exec"))) = {};

namespace {

constexpr std::size_t kDefaultLimit = std::size_t(32) << 20;
constexpr std::size_t kSlabBytes = std::size_t(64) << 10;
constexpr std::size_t kAlign = FrameLists::step;  // blocks are 16-byte aligned: every size class is a multiple
static_assert(kAlign >= alignof(std::max_align_t));

constexpr std::size_t class_bytes(std::size_t c) noexcept { return (c + 1) * FrameLists::step; }

// The process-wide depot. Never destroyed (threads may exit after static destruction began); it lists every slab,
// which also keeps them reachable for leak checkers.
struct Depot {
  std::mutex mu;
  FrameLists::Block* lists[FrameLists::classes] = {};
  std::atomic<std::size_t> blocks{0};               // blocks in the lists: the slow path skips the lock when 0
  std::atomic<std::size_t> bytes{0};                // their bytes
  std::atomic<std::size_t> bytes_after_release{0};  // what the last release_free_slabs could not give back
  std::vector<std::byte*> slabs;                    // every slab, sorted by address (under mu)

  void put(FrameLists::Block* b, std::size_t c) noexcept {
    std::lock_guard lock(mu);
    b->next = lists[c];
    lists[c] = b;
    blocks.fetch_add(1, std::memory_order_relaxed);
    bytes.fetch_add(class_bytes(c), std::memory_order_relaxed);
  }
  FrameLists::Block* take(std::size_t c) noexcept {
    if (blocks.load(std::memory_order_relaxed) == 0) return nullptr;
    std::lock_guard lock(mu);
    FrameLists::Block* b = lists[c];
    if (b) {
      lists[c] = b->next;
      blocks.fetch_sub(1, std::memory_order_relaxed);
      bytes.fetch_sub(class_bytes(c), std::memory_order_relaxed);
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
        bytes.fetch_add(class_bytes(c), std::memory_order_relaxed);
      }
    }
    fl.cached_bytes = 0;
  }
  void add_slab(std::byte* slab) {
    std::lock_guard lock(mu);
    slabs.insert(std::upper_bound(slabs.begin(), slabs.end(), slab, std::less<>()), slab);
  }
  // Whether enough was freed into the depot since the last release to be worth a walk.
  bool worth_releasing() const noexcept {
    return bytes.load(std::memory_order_relaxed) >=
           bytes_after_release.load(std::memory_order_relaxed) + frame_reserve_bytes + kSlabBytes;
  }
  // Frees the slabs whose blocks are all here, beyond frame_reserve_bytes of them; returns the bytes freed.
  std::size_t release_free_slabs() noexcept;
};

std::size_t Depot::release_free_slabs() noexcept {
  std::lock_guard lock(mu);
  std::vector<std::size_t> free_bytes;  // per slab; `all_free` marks the ones to go
  try {
    free_bytes.assign(slabs.size(), 0);
  } catch (...) {
    return 0;
  }
  constexpr std::size_t all_free = SIZE_MAX;
  auto slab_of = [this](const FrameLists::Block* b) {
    auto it = std::upper_bound(slabs.begin(), slabs.end(), reinterpret_cast<const std::byte*>(b), std::less<>());
    return static_cast<std::size_t>(it - slabs.begin()) - 1;  // every block lies in a listed slab
  };
  for (std::size_t c = 0; c < FrameLists::classes; ++c)
    for (FrameLists::Block* b = lists[c]; b; b = b->next) free_bytes[slab_of(b)] += class_bytes(c);
  std::size_t kept = 0, going = 0;
  for (std::size_t& f : free_bytes) {
    if (f != kSlabBytes) continue;
    if (kept + kSlabBytes <= frame_reserve_bytes) {
      kept += kSlabBytes;
    } else {
      f = all_free;
      ++going;
    }
  }
  if (going > 0) {
    for (std::size_t c = 0; c < FrameLists::classes; ++c) {
      for (FrameLists::Block** link = &lists[c]; *link;) {
        if (free_bytes[slab_of(*link)] == all_free) {
          *link = (*link)->next;
          blocks.fetch_sub(1, std::memory_order_relaxed);
          bytes.fetch_sub(class_bytes(c), std::memory_order_relaxed);
        } else {
          link = &(*link)->next;
        }
      }
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < slabs.size(); ++i) {
      if (free_bytes[i] == all_free)
        ::operator delete(slabs[i], std::align_val_t(kAlign));
      else
        slabs[out++] = slabs[i];
    }
    slabs.resize(out);
  }
  bytes_after_release.store(bytes.load(std::memory_order_relaxed), std::memory_order_relaxed);
  return going * kSlabBytes;
}

Depot& depot() noexcept {
  static Depot* d = new Depot;  // deliberately immortal, see above
  return *d;
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
      depot().add_slab(slab);
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
    heap_free(p, size);
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

bool frame_memory_to_release() noexcept {
  return tls_frame_lists.cached_bytes > frame_reserve_bytes || depot().worth_releasing();
}

std::size_t release_frame_memory() noexcept {
  FrameLists& fl = tls_frame_lists;
  if (fl.cached_bytes > frame_reserve_bytes) depot().put_all(fl);
  return depot().release_free_slabs();
}

std::size_t frame_slab_bytes() noexcept {
  Depot& d = depot();
  std::lock_guard lock(d.mu);
  return d.slabs.size() * kSlabBytes;
}
std::size_t last_frame_size() noexcept { return tls_frame_lists.last_size; }

}  // namespace tulipa::detail
