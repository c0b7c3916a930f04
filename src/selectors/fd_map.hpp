// FdMap: per-fd bookkeeping for the selectors and the loop. A two-level table indexed by fd for fds below
// `dense_limit` (the common case: the kernel hands out the lowest free number, so a process with N open files uses
// fds 0..N), and a hash map for the rare huge fd (dup2 onto 500000, say), so one such fd does not cost a table of
// half a million slots.
//
// The dense part is made of pages of `page_slots` slots, each allocated (and value-initialised) the first time an fd
// in its range is inserted, then never moved or freed until the map is destroyed; an inline array of 256 page
// pointers (2 KiB) indexes them. So memory follows the fds in use a page at a time, not a power of two: 10,010 open
// fds (a server with 10,000 connections) cost 40 pages = 10,240 slots, 160 KiB with the 16-byte entries of the loop
// and the epoll selector (16 bytes an fd), where a doubling vector touched 16,384 slots. Page memory is kept when
// its fds go away: reopening is then free, and a connection churning across a page boundary allocates nothing. After
// a burst, give_back() frees the pages above the highest fd in use but one (the kernel hands out the lowest free
// number, so a burst's fds leave from the top): a server back to 10 connections from 10,000 keeps two pages.
//
// Lookups never allocate: one comparison, the page pointer, the slot. Only insert allocates, so a select() that only
// looks fds up allocates nothing. Pointers returned by find()/insert() stay valid until that fd is erased (or the
// map is destroyed or assigned to): other inserts and erases move nothing, in the pages as in the hash map (whose
// nodes stay put on rehash).
//
// V is default-constructible and move-assignable, and `v.occupied()` tells a live slot from an empty one (the
// selectors use a non-empty event mask, which a registration always has). Erasing move-assigns V{} into the slot.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <unordered_map>
#include <utility>

namespace tulipa::detail {

template <class V>
class FdMap {
 public:
  static constexpr int default_dense_limit = 65536;  // also the largest: a bigger one is clamped to it
  // 256 slots: 4 KiB pages for the 16-byte entries of the loop and the epoll selector.
  static constexpr std::size_t page_shift = 8;
  static constexpr std::size_t page_slots = std::size_t(1) << page_shift;
  static constexpr std::size_t max_pages = std::size_t(default_dense_limit) >> page_shift;

  explicit FdMap(int dense_limit = default_dense_limit)
      : dense_limit_(std::clamp(dense_limit, 0, default_dense_limit)) {}

  V* find(int fd) noexcept {
    if (unsigned(fd) < unsigned(dense_limit_)) {  // one comparison: a negative fd wraps to a huge unsigned
      V* slot = dense_slot(fd);
      return slot != nullptr && slot->occupied() ? slot : nullptr;
    }
    if (fd < 0) return nullptr;
    auto it = sparse_.find(fd);
    return it == sparse_.end() ? nullptr : &it->second;
  }
  const V* find(int fd) const noexcept { return const_cast<FdMap*>(this)->find(fd); }

  // Precondition: fd >= 0, fd not present, value.occupied(). May throw std::bad_alloc, leaving the table unchanged.
  V& insert(int fd, V value) {
    if (fd < dense_limit_) {
      const std::size_t p = std::size_t(fd) >> page_shift;
      in_pages(p);
      if (!pages_[p]) pages_[p] = std::make_unique<V[]>(page_slots);  // value-initialised: every slot empty
      V& slot = pages_[p][std::size_t(fd) & (page_slots - 1)];
      slot = std::move(value);
      ++size_;
      return slot;
    }
    auto [it, inserted] = sparse_.emplace(fd, std::move(value));
    (void)inserted;
    ++size_;
    return it->second;
  }

  // Returns whether fd was present.
  bool erase(int fd) noexcept {
    if (fd < 0) return false;
    if (fd < dense_limit_) {
      V* slot = dense_slot(fd);
      if (slot == nullptr || !slot->occupied()) return false;
      *slot = V{};
      --size_;
      erased_ = true;
      return true;
    }
    if (sparse_.erase(fd) == 0) return false;
    --size_;
    return true;
  }

  // Calls f(fd, value) for every present fd: the dense ones in increasing fd order, then the huge ones in no
  // particular order. f must not insert or erase.
  template <class F>
  void for_each(F&& f) {
    for (std::size_t p = 0; p < pages_.size(); ++p) {  // (the null pointers past the limit cost nothing)
      V* page = pages_[p].get();
      if (page == nullptr) continue;
      for (std::size_t i = 0; i < page_slots; ++i)
        if (page[i].occupied()) f(int((p << page_shift) | i), page[i]);
    }
    for (auto& [fd, v] : sparse_) f(fd, v);
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // For tests: how many slots the allocated pages hold, and how many fds live in the hash map.
  std::size_t dense_capacity() const noexcept {
    std::size_t pages = 0;
    for (const auto& page : pages_) pages += page != nullptr;
    return pages * page_slots;
  }
  std::size_t sparse_size() const noexcept { return sparse_.size(); }

  // Whether give_back() may have pages to free: a dense fd was erased since it last ran.
  bool over_reserve() const noexcept { return erased_; }
  // Frees the pages above the highest page with an fd in use, but the first of them. Returns the bytes freed.
  std::size_t give_back() noexcept {
    erased_ = false;
    std::size_t top = max_pages;  // the highest page with an fd in use, or max_pages when none is
    for (std::size_t p = max_pages; p-- > 0 && top == max_pages;) {
      const V* page = pages_[p].get();
      if (page == nullptr) continue;
      for (std::size_t i = 0; i < page_slots; ++i) {
        if (page[i].occupied()) {
          top = p;
          break;
        }
      }
    }
    const std::size_t keep = top == max_pages ? 1 : top + 2;  // the page above the top one (or page 0) stays
    std::size_t freed = 0;
    for (std::size_t p = keep; p < max_pages; ++p) {
      if (pages_[p]) {
        pages_[p].reset();
        freed += page_slots * sizeof(V);
      }
    }
    return freed;
  }

 private:
  // The slot for a dense fd (0 <= fd < dense_limit_), or null when its page was never allocated.
  V* dense_slot(int fd) const noexcept {
    in_pages(unsigned(fd) >> page_shift);
    V* page = pages_[unsigned(fd) >> page_shift].get();
    return page != nullptr ? page + (unsigned(fd) & (page_slots - 1)) : nullptr;
  }

  // dense_limit_ <= default_dense_limit, so a dense fd's page is below max_pages. Said to the compiler (free at run
  // time): g++ 12 cannot see it through dense_limit_ and warns (-Warray-bounds) where an fd beyond the limit is
  // inserted, on the branch that never runs.
  static void in_pages(std::size_t p) noexcept {
    if (p >= max_pages) __builtin_unreachable();
  }

  int dense_limit_;
  std::size_t size_ = 0;
  bool erased_ = false;  // since the last give_back()
  // pages_[p] holds fds [p * page_slots, (p + 1) * page_slots). Inline, 2 KiB: a lookup then costs two dependent
  // loads (page pointer, slot) as a flat vector's did, not three (array pointer, page pointer, slot).
  std::array<std::unique_ptr<V[]>, max_pages> pages_{};
  std::unordered_map<int, V> sparse_;
};

}  // namespace tulipa::detail
