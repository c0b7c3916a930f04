// Bytes: a move-only byte string whose memory comes from the thread's chunk pool. What the stream reads
// (StreamReader::read & co) and sock_recv return, in place of Python's bytes.
//
// Why not std::vector<std::byte> or std::string: a read per request would cost a malloc and a free per request.
// A Bytes holds a chunk of a power-of-two size class (256 B to 64 KiB) taken from a per-thread free list; when it
// goes, the chunk goes back to that list, so reading in steady state allocates nothing. A stream hands the chunk
// its transport read into straight to the reader (no copy) when the read takes all of the buffered data.
// Chunks above 64 KiB come from the heap and go back to it.
//
// Size: 16 bytes (a Bytes sits in coroutine frames: the echo handler's frame holds one per connection). The
// chunk's size class rides in the low bits of its address; a chunk above the classes keeps its size in a header
// of its own.
//
// Threads: a Bytes may be moved to and destroyed on any thread; its chunk then joins that thread's pool (the
// chunks are ordinary heap memory). One loop runs per thread, so the thread's pool is the loop's pool.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace tulipa {

namespace detail {
struct Chunk {
  std::byte* data = nullptr;
  std::size_t capacity = 0;
};
// The pool's size classes: 256 << c bytes for c in 0..chunk_classes-1. A chunk beyond them ("big") is a heap
// block that starts with a header holding its capacity: data = block + chunk_header.
inline constexpr std::size_t chunk_min_shift = 8;
inline constexpr std::size_t chunk_classes = 9;  // 256 B to 64 KiB
inline constexpr std::size_t chunk_header = 16;  // keeps a big chunk's data 16-byte aligned
// Every chunk's data is 16-byte aligned (operator new's guarantee, and the header above keeps it): the 4 low bits
// of its address are free for a tag. Tag c < chunk_classes: a class-c chunk; chunk_big_tag: a big chunk.
inline constexpr std::uintptr_t chunk_tag_mask = 15;
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
}  // namespace detail

class Bytes {
 public:
  // The most one Bytes holds (its offsets are 32-bit: a Bytes sits in coroutine frames and is kept small).
  static constexpr std::size_t max_size = (std::size_t{1} << 32) - 4096;

  Bytes() noexcept = default;
  // Copies `data` into a pooled chunk. More than max_size bytes: std::length_error.
  explicit Bytes(std::span<const std::byte> data);
  explicit Bytes(std::string_view text) : Bytes(std::as_bytes(std::span(text.data(), text.size()))) {}
  Bytes(Bytes&& o) noexcept
      : chunk_(std::exchange(o.chunk_, 0)), begin_(std::exchange(o.begin_, 0)), size_(std::exchange(o.size_, 0)) {}
  Bytes& operator=(Bytes&& o) noexcept {
    if (this != &o) {
      reset();
      chunk_ = std::exchange(o.chunk_, 0);
      begin_ = std::exchange(o.begin_, 0);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  ~Bytes() { reset(); }

  const std::byte* data() const noexcept { return base() + begin_; }
  std::byte* data() noexcept { return base() + begin_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // The chunk's size (what this Bytes costs in memory).
  std::size_t capacity() const noexcept {
    return chunk_ ? detail::chunk_capacity(base(), chunk_ & detail::chunk_tag_mask) : 0;
  }

  std::span<const std::byte> span() const noexcept { return {data(), size_}; }
  operator std::span<const std::byte>() const noexcept { return span(); }  // NOLINT: a Bytes is a byte span
  std::string_view view() const noexcept { return {reinterpret_cast<const char*>(data()), size_}; }
  std::string str() const { return std::string(view()); }
  const std::byte* begin() const noexcept { return data(); }
  const std::byte* end() const noexcept { return data() + size_; }

  // Gives the chunk back to the pool; the Bytes is empty afterwards.
  void reset() noexcept {
    if (chunk_) detail::chunk_free({base(), capacity()});
    chunk_ = 0;
    begin_ = size_ = 0;
  }

  friend bool operator==(const Bytes& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(const Bytes& a, const Bytes& b) noexcept { return a.view() == b.view(); }

  // For the library: takes ownership of `chunk` (capacity <= max_size), whose bytes [begin, begin + size) are
  // the content.
  static Bytes adopt(detail::Chunk chunk, std::size_t begin, std::size_t size) noexcept {
    Bytes b;
    if (chunk.data) b.chunk_ = reinterpret_cast<std::uintptr_t>(chunk.data) | detail::chunk_tag(chunk.capacity);
    b.begin_ = static_cast<std::uint32_t>(begin);
    b.size_ = static_cast<std::uint32_t>(size);
    return b;
  }

 private:
  std::byte* base() const noexcept { return reinterpret_cast<std::byte*>(chunk_ & ~detail::chunk_tag_mask); }

  std::uintptr_t chunk_ = 0;  // the chunk's address | its tag (see detail::chunk_tag); 0 without a chunk
  std::uint32_t begin_ = 0;
  std::uint32_t size_ = 0;
};

}  // namespace tulipa
