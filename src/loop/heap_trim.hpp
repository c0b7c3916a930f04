// Giving the heap back after a burst. glibc's free() returns memory to the system only from the top of the heap;
// the pages of blocks freed in the middle (OpenSSL's objects of 2,000 closed TLS connections, interleaved with
// what stays) remain resident until malloc_trim() is called. So whoever frees a lot of heap memory reports it here,
// and the loop calls malloc_trim(0) when it is about to sleep with at least `heap_trim_threshold` bytes reported
// since the last trim: once a burst is over, at most once a second (it shortens its sleep to wait for that
// second, so an idle loop does not keep the memory). A trim walks the heap's free blocks: a few milliseconds for
// a heap of hundreds of MiB, paid only when there is that much to give back. The coroutine frame allocator's slabs
// (detail/frame_alloc.hpp) are given back at the same moment, when a burst of frames left more than its reserve.
#pragma once

#include <cstddef>

#include "tulipa/clock.hpp"

namespace tulipa::detail {

inline constexpr std::size_t heap_trim_threshold = 4 * 1024 * 1024;

// `bytes` of heap memory were freed on this thread (an estimate is enough).
void heap_released(std::size_t bytes) noexcept;
// Called by the loop before it sleeps for `timeout` (Selector::forever: no limit); trims if due and returns the
// timeout to sleep for (shortened while a trim waits for its turn).
Duration trim_heap_before_sleep(Duration timeout) noexcept;
// Trims made by this thread (tests, benchmarks).
std::size_t heap_trims() noexcept;

}  // namespace tulipa::detail
