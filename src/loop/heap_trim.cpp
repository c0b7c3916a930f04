#include "loop/heap_trim.hpp"

#include <malloc.h>

#include <chrono>

#include "streams/chunk_pool.hpp"
#include "tulipa/detail/frame_alloc.hpp"
#include "tulipa/selector.hpp"

namespace tulipa::detail {

namespace {

constexpr std::chrono::steady_clock::duration min_interval = std::chrono::seconds(1);

struct HeapTrim {
  std::size_t released = 0;
  std::size_t trims = 0;
  std::chrono::steady_clock::time_point last{};
};
thread_local constinit HeapTrim tls_trim{};

}  // namespace

void heap_released(std::size_t bytes) noexcept { tls_trim.released += bytes; }

Duration trim_heap_before_sleep(Duration timeout, LoopReserves& loop) noexcept {
  HeapTrim& t = tls_trim;
  if (t.released < heap_trim_threshold && !frame_memory_to_release() && !chunk_memory_to_release() &&
      !loop.over_reserve())
    return timeout;
  const auto now = std::chrono::steady_clock::now();
  const auto next = t.last + min_interval;
  if (now < next) {
    const auto wait = std::chrono::duration_cast<Duration>(next - now) + Duration(1);
    return timeout == Selector::forever || timeout > wait ? wait : timeout;
  }
  // The loop's pools and tables beyond their reserves, coroutine frames' slabs all free again and the byte chunks
  // cached beyond their reserve go back to the heap first; then the heap goes back to the system, if there is
  // something to give back (a trim walks the heap).
  std::size_t freed = t.released;
  freed += loop.give_back();
  freed += release_frame_memory();
  freed += release_chunk_memory();
  if (freed > 0) ::malloc_trim(0);
  t.released = 0;
  t.last = now;
  ++t.trims;
  return timeout;
}

std::size_t heap_trims() noexcept { return tls_trim.trims; }

}  // namespace tulipa::detail
