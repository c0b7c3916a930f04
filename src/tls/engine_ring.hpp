// EngineRing: one of a TLS engine's two ciphertext rings (tls_engine.hpp), whose memory exists only while it holds
// bytes. An idle TLS connection (nothing received and not yet decrypted, nothing encrypted and not yet sent) then
// holds no ring at all: the storage is taken when the first byte is about to arrive or leave, and given back the
// moment the ring is empty again, as OpenSSL's SSL_MODE_RELEASE_BUFFERS does for its own record buffers.
//
// Where the storage comes from: mmap'd blocks of the ring's capacity, through a per-thread reserve of freed blocks
// (RingBlocks) so that a busy connection that empties its ring on every message does not pay a system call per
// message. The reserve is bounded (ring_reserve_bytes); beyond it blocks are unmapped at once, so the memory of a
// burst of connections goes back to the system when they go idle or close, instead of staying in malloc's heap.
// Why not malloc: 32 KiB blocks interleaved with the connections' small objects fragment the heap, and a freed
// block in the middle of it is never returned (issue 10: 2,000 TLS connections kept 188 MiB after closing).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tulipa::detail {

// Bytes of freed ring blocks each thread keeps for reuse (the rest is unmapped).
inline constexpr std::size_t ring_reserve_bytes = 1024 * 1024;

// A byte ring of fixed capacity with lazily allocated storage. Not thread-safe (one engine, one thread at a time);
// the storage may be released on another thread than the one that took it (it joins that thread's reserve).
class EngineRing {
 public:
  explicit EngineRing(std::size_t capacity) noexcept : capacity_(capacity) {}
  ~EngineRing() { release(); }
  EngineRing(const EngineRing&) = delete;
  EngineRing& operator=(const EngineRing&) = delete;

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool full() const noexcept { return size_ == capacity_; }
  bool holds_storage() const noexcept { return data_ != nullptr; }

  // The free, contiguous space after the data (allocates the storage when there is none). Empty when full.
  // Throws std::bad_alloc when no storage can be had.
  std::span<std::byte> space();
  // `n` bytes were written at the start of space().
  void commit(std::size_t n) noexcept;
  // The first contiguous part of the data (empty when none).
  std::span<const std::byte> data() const noexcept;
  // `n` bytes of data() were taken; the storage is released when the ring becomes empty.
  void consume(std::size_t n) noexcept;
  // Copies in up to `in.size()` bytes (as many as fit); copies out up to `out.size()`. Return the counts.
  std::size_t write(std::span<const std::byte> in);
  std::size_t read(std::span<std::byte> out) noexcept;
  // Gives the storage back if the ring is empty (space() may have taken it for a read that brought nothing).
  void release_if_empty() noexcept {
    if (size_ == 0) release();
  }

 private:
  void release() noexcept;

  std::byte* data_ = nullptr;
  std::size_t capacity_;
  std::size_t head_ = 0;  // where the data starts
  std::size_t size_ = 0;
};

// The calling thread's reserve of freed ring blocks, in bytes (benchmarks and tests).
std::size_t ring_reserve_held() noexcept;

}  // namespace tulipa::detail
