#include "tls/engine_ring.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

namespace tulipa::detail {

namespace {

std::size_t mapping_bytes(std::size_t capacity) noexcept {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (capacity + page - 1) / page * page;
}

void* map_block(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

// The thread's reserve: freed blocks by mapping size, most recently freed last (its pages are the likeliest to be
// in cache). A handful of sizes at most (the engines' capacities), so a linear scan is the right search.
struct RingBlocks {
  struct Block {
    void* p;
    std::size_t bytes;
  };
  std::vector<Block> blocks;
  std::size_t held = 0;

  ~RingBlocks();
  void* take(std::size_t bytes) {
    for (std::size_t i = blocks.size(); i-- > 0;) {
      if (blocks[i].bytes == bytes) {
        void* p = blocks[i].p;
        blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(i));
        held -= bytes;
        return p;
      }
    }
    return map_block(bytes);
  }
  void give(void* p, std::size_t bytes) noexcept {
    if (held + bytes <= ring_reserve_bytes) {
      try {
        blocks.push_back({p, bytes});
        held += bytes;
        return;
      } catch (...) {  // no room to remember it: unmap it
      }
    }
    ::munmap(p, bytes);
  }
};

// Set once the thread's reserve is destroyed (thread exit): blocks freed later, by other thread-exit destructors,
// are unmapped at once.
thread_local constinit bool reserve_gone = false;

RingBlocks::~RingBlocks() {
  reserve_gone = true;
  for (const Block& b : blocks) ::munmap(b.p, b.bytes);
}

RingBlocks& ring_blocks() {
  thread_local RingBlocks blocks;
  return blocks;
}

}  // namespace

std::size_t ring_reserve_held() noexcept { return reserve_gone ? 0 : ring_blocks().held; }

std::span<std::byte> EngineRing::space() {
  if (size_ == capacity_) return {};
  if (data_ == nullptr) {
    const std::size_t bytes = mapping_bytes(capacity_);
    data_ = static_cast<std::byte*>(reserve_gone ? map_block(bytes) : ring_blocks().take(bytes));
    head_ = 0;
  }
  const std::size_t tail = (head_ + size_) % capacity_;
  const std::size_t n = tail >= head_ ? capacity_ - tail : head_ - tail;
  return {data_ + tail, n};
}

void EngineRing::commit(std::size_t n) noexcept {
  size_ += n;
  if (size_ == 0) release();
}

std::span<const std::byte> EngineRing::data() const noexcept {
  if (size_ == 0) return {};
  return {data_ + head_, std::min(size_, capacity_ - head_)};
}

void EngineRing::consume(std::size_t n) noexcept {
  size_ -= n;
  head_ = (head_ + n) % capacity_;
  if (size_ == 0) release();
}

std::size_t EngineRing::write(std::span<const std::byte> in) {
  std::size_t done = 0;
  while (done < in.size()) {
    std::span<std::byte> free = space();
    if (free.empty()) break;
    const std::size_t n = std::min(free.size(), in.size() - done);
    std::memcpy(free.data(), in.data() + done, n);
    size_ += n;
    done += n;
  }
  return done;
}

std::size_t EngineRing::read(std::span<std::byte> out) noexcept {
  std::size_t done = 0;
  while (done < out.size()) {
    std::span<const std::byte> d = data();
    if (d.empty()) break;
    const std::size_t n = std::min(d.size(), out.size() - done);
    std::memcpy(out.data() + done, d.data(), n);
    consume(n);
    done += n;
  }
  return done;
}

void EngineRing::release() noexcept {
  if (data_ == nullptr) return;
  if (reserve_gone) {
    ::munmap(data_, mapping_bytes(capacity_));
  } else {
    ring_blocks().give(data_, mapping_bytes(capacity_));
  }
  data_ = nullptr;
  head_ = 0;
  size_ = 0;
}

}  // namespace tulipa::detail
