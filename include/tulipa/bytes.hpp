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
#include "tulipa/detail/bytes.hpp"

namespace tulipa {

class Bytes {
 public:
  // The most one Bytes holds (its offsets are 32-bit: a Bytes sits in coroutine frames and is kept small).
  static constexpr std::size_t max_size = (std::size_t{1} << 32) - 4096;

  Bytes() noexcept = default;
  // Copies `data` into a pooled chunk. More than max_size bytes: std::length_error.
  explicit Bytes(std::span<const std::byte> data);
  explicit Bytes(std::string_view text) : Bytes(std::as_bytes(std::span(text.data(), text.size()))) {}
  Bytes(Bytes&& o) noexcept
      : chunk_(std::exchange(o.chunk_, {})), begin_(std::exchange(o.begin_, 0)), size_(std::exchange(o.size_, 0)) {}
  Bytes& operator=(Bytes&& o) noexcept {
    if (this != &o) {
      reset();
      chunk_ = std::exchange(o.chunk_, {});
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
  std::size_t capacity() const noexcept { return chunk_ ? detail::chunk_capacity(base(), chunk_.tag()) : 0; }

  std::span<const std::byte> span() const noexcept { return {data(), size_}; }
  operator std::span<const std::byte>() const noexcept { return span(); }  // NOLINT: a Bytes is a byte span
  std::string_view view() const noexcept { return {reinterpret_cast<const char*>(data()), size_}; }
  std::string str() const { return std::string(view()); }
  const std::byte* begin() const noexcept { return data(); }
  const std::byte* end() const noexcept { return data() + size_; }

  // Gives the chunk back to the pool; the Bytes is empty afterwards.
  void reset() noexcept {
    if (chunk_) detail::chunk_free({base(), capacity()});
    chunk_ = {};
    begin_ = size_ = 0;
  }

  friend bool operator==(const Bytes& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(const Bytes& a, const Bytes& b) noexcept { return a.view() == b.view(); }

 private:
  friend struct detail::BytesAccess;
  // Takes ownership of `chunk` (capacity <= max_size), whose bytes [begin, begin + size) are the content: the
  // library's readers hand over what they filled (detail/bytes_access.hpp).
  static Bytes adopt(detail::Chunk chunk, std::size_t begin, std::size_t size) noexcept {
    Bytes b;
    if (chunk.data) b.chunk_ = detail::ChunkPtr::from_aligned(chunk.data, detail::chunk_tag(chunk.capacity));
    b.begin_ = static_cast<std::uint32_t>(begin);
    b.size_ = static_cast<std::uint32_t>(size);
    return b;
  }
  std::byte* base() const noexcept { return chunk_.ptr<std::byte>(); }

  detail::ChunkPtr chunk_;  // the chunk and its size class (the table in detail/bytes.hpp); null without a chunk
  std::uint32_t begin_ = 0;
  std::uint32_t size_ = 0;
};
static_assert(sizeof(Bytes) == 16, "a Bytes sits in coroutine frames: 16 bytes");

}  // namespace tulipa
