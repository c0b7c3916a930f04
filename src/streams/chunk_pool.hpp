// Giving back what a burst left in this thread's pool of byte chunks (chunk_pool.cpp). The pool caches freed chunks
// up to its limit (8 MiB by default, bytes.hpp), so that traffic reuses them; after a burst (10,000 stream
// connections' read buffers freed at once) the loop, about to sleep (loop/heap_trim.hpp), frees what exceeds a
// reserve among the chunks nobody took since its previous release (so a steady load, which cycles through its
// chunks, allocates nothing; a burst's chunks go one period after it ended).
#pragma once

#include <cstddef>

namespace tulipa::detail {

inline constexpr std::size_t chunk_reserve_bytes = std::size_t(1) << 20;

// Whether this thread's pool caches more than the reserve.
bool chunk_memory_to_release() noexcept;
// Frees cached chunks that stayed unused since the last call, the biggest first, beyond the reserve. Returns the
// bytes freed.
std::size_t release_chunk_memory() noexcept;

}  // namespace tulipa::detail
