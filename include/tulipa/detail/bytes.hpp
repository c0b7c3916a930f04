// Internals of tulipa/bytes.hpp (the library's, not part of the contract).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "tulipa/detail/tagged_ptr.hpp"

namespace tulipa::detail {

struct BytesAccess;  // bytes_access.hpp

struct Chunk {
  std::byte* data = nullptr;
  std::size_t capacity = 0;
};
// The pool's size classes: 256 << c bytes for c in 0..chunk_classes-1. A chunk beyond them ("big") is a heap
// block that starts with a header holding its capacity: data = block + chunk_header.
inline constexpr std::size_t chunk_min_shift = 8;
inline constexpr std::size_t chunk_classes = 9;  // 256 B to 64 KiB
inline constexpr std::size_t chunk_header = 16;  // keeps a big chunk's data 16-byte aligned
// A Bytes holds its chunk in one word, a ChunkPtr: every chunk's data is 16-byte aligned (operator new's guarantee,
// and the header above keeps it), so the 4 low bits of its address are free for the chunk's size:
//   bits 3-0           | pointer      | chunk
//   c < chunk_classes  | its data     | class c: 256 << c bytes
//   15 (chunk_big_tag) | its data     | big: its capacity is in the header before the data
//   0                  | null         | none
using ChunkPtr = TaggedPtr<4>;
inline constexpr std::uintptr_t chunk_big_tag = 15;
static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= 16 && chunk_classes < chunk_big_tag);
// `capacity` as chunk_alloc gave it: up to the largest class it is a class's exact power of two.
inline std::uintptr_t chunk_tag(std::size_t capacity) noexcept {
  if (capacity > std::size_t{1} << (chunk_min_shift + chunk_classes - 1)) return chunk_big_tag;
  return static_cast<std::uintptr_t>(std::countr_zero(capacity)) - chunk_min_shift;
}
inline std::size_t chunk_capacity(const std::byte* data, std::uintptr_t tag) noexcept {
  if (tag != chunk_big_tag) return std::size_t{1} << (chunk_min_shift + tag);
  return *reinterpret_cast<const std::size_t*>(data - chunk_header);
}
// A chunk of at least `size` bytes (size 0 gives the smallest class). Throws std::bad_alloc.
Chunk chunk_alloc(std::size_t size);
// Returns a chunk (data and capacity exactly as chunk_alloc gave them) to this thread's pool.
void chunk_free(Chunk chunk) noexcept;
// Bytes this thread's pool keeps in its free lists, and their cap (default 8 MiB; frees beyond it go to the heap).
std::size_t chunk_cache_bytes() noexcept;
void set_chunk_cache_limit(std::size_t bytes) noexcept;
// Blocks this thread's pool had to take from the heap (misses and oversized chunks): the benchmarks' and tests'
// view of "allocates nothing in steady state".
std::uint64_t chunk_heap_allocations() noexcept;
// Gives this thread's cached chunks back to the heap.
void trim_chunk_cache() noexcept;

}  // namespace tulipa::detail
