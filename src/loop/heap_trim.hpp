// Giving the heap back after a burst. glibc's free() returns memory to the system only from the top of the heap;
// the pages of blocks freed in the middle (OpenSSL's objects of 2,000 closed TLS connections, interleaved with
// what stays) remain resident until malloc_trim() is called. So whoever frees a lot of heap memory reports it here,
// and the loop calls malloc_trim(0) when it is about to sleep with at least `heap_trim_threshold` bytes reported
// since the last trim: once a burst is over, at most once a second (it shortens its sleep to wait for that
// second, so an idle loop does not keep the memory). A trim walks the heap's free blocks: a few milliseconds for
// a heap of hundreds of MiB, paid only when there is something to give back. At the same moment, and first (so that
// malloc_trim finds it free), what was kept for reuse beyond a bounded reserve goes back to the heap: the loop's own
// (LoopReserves: its handle pool, timer heap and fd table, and its selector's tables), the coroutine frame
// allocator's slabs (detail/frame_alloc.hpp) and the byte chunks of the streams (streams/chunk_pool.hpp).
#pragma once

#include <cstddef>

#include "tulipa/clock.hpp"

namespace tulipa::detail {

inline constexpr std::size_t heap_trim_threshold = 4 * 1024 * 1024;

// What a loop keeps for reuse after a burst. over_reserve() is asked each time the loop is about to sleep: a few
// comparisons; give_back() runs when the trim is made.
class LoopReserves {
 public:
  // Whether give_back() has something to free (and has not just found it could free nothing).
  virtual bool over_reserve() const noexcept = 0;
  // Returns the bytes freed (an estimate is enough).
  virtual std::size_t give_back() noexcept = 0;

 protected:
  ~LoopReserves() = default;
};

// `bytes` of heap memory were freed on this thread (an estimate is enough).
void heap_released(std::size_t bytes) noexcept;
// Called by the loop before it sleeps for `timeout` (Selector::forever: no limit); trims if due (the loop's reserves
// first) and returns the timeout to sleep for (shortened while a trim waits for its turn).
Duration trim_heap_before_sleep(Duration timeout, LoopReserves& loop) noexcept;
// Trims made by this thread (tests, benchmarks).
std::size_t heap_trims() noexcept;

}  // namespace tulipa::detail
