#include "net/write_queue.hpp"

#include <sys/mman.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace tulipa::detail {

namespace {
// Free 4 KiB chunks of this thread, reused before malloc is asked. Bounded so that one burst of slow readers does
// not pin memory for ever: beyond `max_free` chunks go back to the allocator.
struct ChunkPool {
  static constexpr std::size_t max_free = 256;  // 1 MiB
  void* free_list = nullptr;
  std::size_t count = 0;
  ~ChunkPool() {
    while (free_list) {
      void* next = *static_cast<void**>(free_list);
      ::operator delete(free_list);
      free_list = next;
    }
  }
};
ChunkPool& chunk_pool() {
  thread_local ChunkPool pool;
  return pool;
}
}  // namespace

WriteQueue::Chunk* WriteQueue::new_chunk(std::size_t capacity, bool big) {
  void* mem;
  if (big) {
    mem = ::mmap(nullptr, big_chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::bad_alloc();
    return new (mem) Chunk{nullptr, 0, 0, 0, static_cast<std::uint32_t>(big_chunk - sizeof(Chunk)), true};
  }
  if (capacity <= chunk_size) {
    capacity = chunk_size;
    ChunkPool& pool = chunk_pool();
    if (pool.free_list) {
      mem = pool.free_list;
      pool.free_list = *static_cast<void**>(mem);
      --pool.count;
    } else {
      mem = ::operator new(sizeof(Chunk) + chunk_size);
    }
  } else {
    mem = ::operator new(sizeof(Chunk) + capacity);
  }
  return new (mem) Chunk{nullptr, 0, 0, 0, static_cast<std::uint32_t>(capacity), false};
}

void WriteQueue::free_chunk(Chunk* c) noexcept {
  if (c->mapped) {
    ::munmap(c, big_chunk);
    return;
  }
  if (c->capacity == chunk_size) {
    ChunkPool& pool = chunk_pool();
    if (pool.count < ChunkPool::max_free) {
      *reinterpret_cast<void**>(c) = pool.free_list;
      pool.free_list = c;
      ++pool.count;
      return;
    }
  }
  ::operator delete(c);
}

std::size_t WriteQueue::pooled_chunks() noexcept { return chunk_pool().count; }

void WriteQueue::append(std::span<const std::byte> data) {
  // The count is updated with every copy, so that a bad_alloc from new_chunk leaves a consistent queue holding
  // a prefix of `data`; a chunk is linked only once allocated and then always receives at least one byte.
  while (!data.empty()) {
    if (tail_ && tail_->end < tail_->capacity) {
      std::size_t n = std::min<std::size_t>(data.size(), tail_->capacity - tail_->end);
      std::memcpy(tail_->data() + tail_->end, data.data(), n);
      tail_->end += static_cast<std::uint32_t>(n);
      tail_->queued += n;
      data = data.subspan(n);
      continue;
    }
    // A chunk of its own for a large piece (capped, so a huge write does not need one huge contiguous block);
    // big (mapped) chunks for a queue that keeps growing or a piece that would fill one.
    const bool big = (tail_ && tail_->queued >= big_after) || data.size() >= big_chunk - sizeof(Chunk);
    Chunk* c = new_chunk(std::min<std::size_t>(data.size(), std::size_t{1} << 24), big);
    if (tail_) {
      c->next = tail_->next;
      c->queued = tail_->queued;
      tail_->next = c;
    } else {
      c->next = c;
    }
    tail_ = c;
  }
}

int WriteQueue::gather(iovec* iov, int max) const noexcept {
  if (!tail_) return 0;
  int n = 0;
  for (Chunk* c = tail_->next; n < max; c = c->next) {
    iov[n].iov_base = c->data() + c->begin;
    iov[n].iov_len = c->end - c->begin;
    ++n;
    if (c == tail_) break;
  }
  return n;
}

void WriteQueue::consume(std::size_t n) noexcept {
  if (n == 0) return;
  Chunk* tail = tail_;
  tail->queued -= n;
  // Drained: free every chunk, so an empty queue owns nothing.
  if (tail->queued == 0) {
    clear();
    return;
  }
  // Bytes remain after the first n, so the tail itself is never freed here.
  while (n > 0) {
    Chunk* head = tail->next;
    std::size_t here = head->end - head->begin;
    if (n < here) {
      head->begin += static_cast<std::uint32_t>(n);
      return;
    }
    n -= here;
    tail->next = head->next;
    free_chunk(head);
  }
}

void WriteQueue::clear() noexcept {
  if (!tail_) return;
  Chunk* c = tail_->next;
  tail_->next = nullptr;  // break the circle
  tail_ = nullptr;
  while (c) {
    Chunk* next = c->next;
    free_chunk(c);
    c = next;
  }
}

}  // namespace tulipa::detail
