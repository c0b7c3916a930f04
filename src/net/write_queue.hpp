// WriteQueue: what a stream transport keeps of written data the kernel did not take yet.
//
// It lives in every connection, so it is one pointer: empty (the usual state: write() sends at once) it owns no
// memory. Data is copied into a circular singly linked list of chunks, reached through its tail (the tail's next
// is the head), and the byte count is kept in the tail chunk's header, so neither a head pointer nor a size costs
// a connection anything while nothing waits. 4 KiB chunks come from a per-thread pool, so a connection that keeps
// falling behind reuses the same chunks instead of calling malloc; a piece larger than that gets one chunk of its
// own size. The transport sends the head of the queue with one vectored system call (gather: up to `max_iov`
// chunks).
//
// Memory that comes back: once a queue holds `big_after` bytes (a peer that stops reading), or for a piece of at
// least `big_chunk` bytes, chunks are `big_chunk` (256 KiB) blocks mapped with mmap and unmapped when sent, so a
// burst (256 MiB queued for a stuck peer) returns to the system when it drains or the connection goes, instead of
// staying in malloc's heap as thousands of 4 KiB holes (RSS stayed at the peak).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

struct iovec;

namespace tulipa::detail {

class WriteQueue {
 public:
  static constexpr std::size_t chunk_size = 4096;
  static constexpr std::size_t big_chunk = 256 * 1024;  // bytes mapped per big chunk, header included
  static constexpr std::size_t big_after = 256 * 1024;  // queued bytes from which new chunks are big
  static constexpr int max_iov = 64;

  WriteQueue() noexcept = default;
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;
  // Takes over `other`'s chunks (a subprocess pipe hands its queue to the write still in flight: pipe_transport.hpp).
  void take(WriteQueue& other) noexcept {
    clear();
    tail_ = other.tail_;
    other.tail_ = nullptr;
  }
  ~WriteQueue() { clear(); }

  // Invariant: tail_ is null exactly when no byte is queued (a drained queue frees its chunks).
  bool empty() const noexcept { return tail_ == nullptr; }
  std::size_t size() const noexcept { return tail_ ? tail_->queued : 0; }
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
    Chunk* next;         // circular: the tail's next is the head
    std::size_t queued;  // meaningful in the tail only: bytes in the whole queue
    std::uint32_t begin;
    std::uint32_t end;
    std::uint32_t capacity;
    bool mapped;  // a big chunk: mmap'ed, munmap'ed when freed
    std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
  };
  static Chunk* new_chunk(std::size_t capacity, bool big);
  static void free_chunk(Chunk* c) noexcept;

  Chunk* tail_ = nullptr;
};

}  // namespace tulipa::detail
