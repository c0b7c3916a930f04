// WriteQueue: what a stream transport keeps of written data the kernel did not take yet.
//
// Empty (the usual state: write() sends at once) it is three words and owns no memory. Data is copied into a
// singly linked list of chunks: 4 KiB chunks come from a per-thread pool, so a connection that keeps falling
// behind reuses the same chunks instead of calling malloc; a piece larger than that gets one chunk of its own
// size. flush() sends the head of the queue with one vectored system call (up to `max_iov` chunks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

struct iovec;

namespace tulipa::detail {

class WriteQueue {
 public:
  static constexpr std::size_t chunk_size = 4096;
  static constexpr int max_iov = 64;

  WriteQueue() noexcept = default;
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;
  ~WriteQueue() { clear(); }

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  void append(std::span<const std::byte> data);
  // Fills `iov` with the queued data, at most `max` entries; returns how many.
  int gather(iovec* iov, int max) const noexcept;
  // Drops the first n bytes (n <= size()).
  void consume(std::size_t n) noexcept;
  void clear() noexcept;

  // Chunks kept in this thread's pool (for tests and benchmarks).
  static std::size_t pooled_chunks() noexcept;

 private:
  struct Chunk {
    Chunk* next;
    std::uint32_t begin;
    std::uint32_t end;
    std::uint32_t capacity;
    std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
  };
  static Chunk* new_chunk(std::size_t capacity);
  static void free_chunk(Chunk* c) noexcept;

  Chunk* head_ = nullptr;
  Chunk* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace tulipa::detail
