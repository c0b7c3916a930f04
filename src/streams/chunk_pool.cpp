// The thread's pool of byte chunks behind Bytes and the stream readers' buffers (see bytes.hpp).
//
// Nine size classes, 256 B to 64 KiB, doubling: a read of n bytes wastes at most half its chunk, and a 64 KiB
// chunk is what one read(2) of the shared read path takes at most. Freed chunks go on the class's free list (the
// link lives in the chunk itself) until the pool holds `limit` bytes; beyond that they go back to the heap, so a
// burst of traffic does not pin its peak memory forever, and what exceeds a 1 MiB reserve is freed when the loop is
// about to sleep (chunk_pool.hpp). Larger chunks are heap blocks with a 16-byte header that
// holds their capacity (bytes.hpp).
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>

#include "streams/chunk_pool.hpp"
#include "tulipa/bytes.hpp"

namespace tulipa::detail {

namespace {

constexpr std::size_t min_shift = chunk_min_shift;                // 256 B
constexpr std::size_t max_shift = min_shift + chunk_classes - 1;  // 64 KiB
constexpr std::size_t classes = chunk_classes;
constexpr std::size_t max_pooled = std::size_t{1} << max_shift;
// Above the largest class, chunks are rounded to pages: a growing read(-1) buffer doubles, so this rarely matters.
constexpr std::size_t page = 4096;

struct FreeNode {
  FreeNode* next;
};

// Constant-initialised and trivially destructible, so a Bytes freed during thread exit (after the guard below
// ran) still finds a valid pool: it then sends its chunk straight back to the heap (limit 0).
struct Pool {
  FreeNode* heads[classes];
  std::size_t cached;
  std::size_t low;  // the least `cached` held since the last release_chunk_memory: what nobody needed meanwhile
  std::size_t limit;
  std::uint64_t heap_allocations;
  bool armed;

  void trim() noexcept {
    for (std::size_t c = 0; c < classes; ++c) {
      while (FreeNode* n = heads[c]) {
        heads[c] = n->next;
        ::operator delete(static_cast<void*>(n));
      }
    }
    cached = 0;
    low = 0;
  }
};

constexpr std::size_t default_limit = 8 * 1024 * 1024;
thread_local constinit Pool tls_pool = {{}, 0, 0, default_limit, 0, false};

// Returns the cached chunks to the heap when the thread exits.
struct ExitGuard {
  bool used = false;
  ~ExitGuard() {
    tls_pool.trim();
    tls_pool.limit = 0;
  }
};
thread_local ExitGuard tls_exit_guard;

Pool& pool() noexcept {
  Pool& p = tls_pool;
  if (!p.armed) {
    p.armed = true;
    tls_exit_guard.used = true;  // constructs the guard, registering its destructor
  }
  return p;
}

std::size_t class_of(std::size_t size) noexcept {
  if (size <= (std::size_t{1} << min_shift)) return 0;
  return static_cast<std::size_t>(std::bit_width(size - 1)) - min_shift;
}

}  // namespace

Chunk chunk_alloc(std::size_t size) {
  Pool& p = pool();
  if (size > max_pooled) {
    // A big chunk: its capacity goes in its header, where a Bytes holding it finds it (bytes.hpp).
    std::size_t cap = (size + page - 1) / page * page;
    auto* block = static_cast<std::byte*>(::operator new(chunk_header + cap));
    *reinterpret_cast<std::size_t*>(block) = cap;
    ++p.heap_allocations;
    return {block + chunk_header, cap};
  }
  std::size_t c = class_of(size);
  std::size_t cap = std::size_t{1} << (c + min_shift);
  if (FreeNode* n = p.heads[c]) {
    p.heads[c] = n->next;
    p.cached -= cap;
    if (p.cached < p.low) p.low = p.cached;
    return {reinterpret_cast<std::byte*>(n), cap};
  }
  ++p.heap_allocations;
  return {static_cast<std::byte*>(::operator new(cap)), cap};
}

void chunk_free(Chunk chunk) noexcept {
  if (!chunk.data) return;
  Pool& p = pool();
  if (chunk.capacity > max_pooled) {
    ::operator delete(static_cast<void*>(chunk.data - chunk_header));
    return;
  }
  if (p.cached + chunk.capacity > p.limit) {
    ::operator delete(static_cast<void*>(chunk.data));
    return;
  }
  std::size_t c = class_of(chunk.capacity);
  auto* n = reinterpret_cast<FreeNode*>(chunk.data);
  n->next = p.heads[c];
  p.heads[c] = n;
  p.cached += chunk.capacity;
}

std::size_t chunk_cache_bytes() noexcept { return pool().cached; }
void set_chunk_cache_limit(std::size_t bytes) noexcept { pool().limit = bytes; }
std::uint64_t chunk_heap_allocations() noexcept { return pool().heap_allocations; }
void trim_chunk_cache() noexcept { pool().trim(); }

bool chunk_memory_to_release() noexcept { return tls_pool.cached > chunk_reserve_bytes; }

std::size_t release_chunk_memory() noexcept {
  // Only what stayed cached since the last release goes (beyond the reserve): a steady load keeps what it cycles
  // through, and a burst's chunks go one period after it ended.
  Pool& p = tls_pool;
  const std::size_t keep = p.cached - std::min(p.cached, p.low) + chunk_reserve_bytes;
  std::size_t freed = 0;
  for (std::size_t c = classes; c-- > 0 && p.cached > keep;) {
    const std::size_t cap = std::size_t{1} << (c + min_shift);
    while (FreeNode* n = p.heads[c]) {
      if (p.cached <= keep) break;
      p.heads[c] = n->next;
      ::operator delete(static_cast<void*>(n));
      p.cached -= cap;
      freed += cap;
    }
  }
  p.low = p.cached;
  return freed;
}

}  // namespace tulipa::detail
