// FdMap: per-fd bookkeeping for the selectors. A vector indexed by fd for fds below `dense_limit` (the common
// case: the kernel hands out the lowest free number, so a process with N open files uses fds 0..N), and a hash map
// for the rare huge fd (dup2 onto 500000, say), so one such fd does not cost a table of half a million slots.
//
// Memory: the dense part grows by doubling up to the highest fd registered, sizeof(V) bytes a slot (16 for the
// selectors' entries: 1 MiB at the 65536 cap). It grows only on insert, never on lookup, so a select() that only
// looks fds up allocates nothing. Pointers returned by find()/insert() are valid until the next insert or erase.
//
// V is default-constructible, and `v.occupied()` tells a live slot from an empty one (the selectors use a
// non-empty event mask, which a registration always has).
#pragma once

#include <algorithm>
#include <cstddef>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tulipa::detail {

template <class V>
class FdMap {
 public:
  static constexpr int default_dense_limit = 65536;

  explicit FdMap(int dense_limit = default_dense_limit) : dense_limit_(dense_limit) {}

  V* find(int fd) noexcept {
    if (fd < 0) return nullptr;
    if (fd < dense_limit_) {
      if (std::size_t(fd) >= dense_.size() || !dense_[std::size_t(fd)].occupied()) return nullptr;
      return &dense_[std::size_t(fd)];
    }
    auto it = sparse_.find(fd);
    return it == sparse_.end() ? nullptr : &it->second;
  }
  const V* find(int fd) const noexcept { return const_cast<FdMap*>(this)->find(fd); }

  // Precondition: fd >= 0, fd not present, value.occupied(). May throw std::bad_alloc, leaving the table unchanged.
  V& insert(int fd, V value) {
    if (fd < dense_limit_) {
      std::size_t need = std::size_t(fd) + 1;
      if (need > dense_.size()) {
        std::size_t size = std::max<std::size_t>(dense_.size() * 2, 64);
        while (size < need) size *= 2;
        dense_.resize(std::min(size, std::size_t(dense_limit_)));
      }
      dense_[std::size_t(fd)] = std::move(value);
      ++size_;
      return dense_[std::size_t(fd)];
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
      if (std::size_t(fd) >= dense_.size() || !dense_[std::size_t(fd)].occupied()) return false;
      dense_[std::size_t(fd)] = V{};
      --size_;
      return true;
    }
    if (sparse_.erase(fd) == 0) return false;
    --size_;
    return true;
  }

  // Calls f(fd, value) for every present fd. f must not insert or erase.
  template <class F>
  void for_each(F&& f) {
    for (std::size_t fd = 0; fd < dense_.size(); ++fd)
      if (dense_[fd].occupied()) f(int(fd), dense_[fd]);
    for (auto& [fd, v] : sparse_) f(fd, v);
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // For tests: how many slots the dense part holds, and how many fds live in the hash map.
  std::size_t dense_capacity() const noexcept { return dense_.size(); }
  std::size_t sparse_size() const noexcept { return sparse_.size(); }

 private:
  int dense_limit_;
  std::size_t size_ = 0;
  std::vector<V> dense_;
  std::unordered_map<int, V> sparse_;
};

}  // namespace tulipa::detail
