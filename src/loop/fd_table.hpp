// Per-fd state of the loop, indexed by fd. fds are small dense integers in practice, so a vector indexed by fd
// serves them (16 bytes per fd number up to the highest one in use); an fd beyond `dense_limit` (a program that
// dup2()s onto a huge number) goes to a hash map instead of growing the vector to that size.
#pragma once

#include <unordered_map>
#include <vector>

namespace tulipa::detail {

template <class T>
class FdTable {
 public:
  static constexpr int dense_limit = 1 << 20;

  // The entry for fd, created empty (T{}) if absent.
  T& at(int fd) {
    if (fd < dense_limit) {
      if (static_cast<std::size_t>(fd) >= dense_.size()) dense_.resize(static_cast<std::size_t>(fd) + 1 + dense_.size() / 2);
      return dense_[static_cast<std::size_t>(fd)];
    }
    return sparse_[fd];
  }
  // The entry for fd, or null if none was ever created.
  T* find(int fd) noexcept {
    if (fd < dense_limit) return static_cast<std::size_t>(fd) < dense_.size() ? &dense_[static_cast<std::size_t>(fd)] : nullptr;
    auto it = sparse_.find(fd);
    return it == sparse_.end() ? nullptr : &it->second;
  }
  void erase(int fd) {
    if (fd < dense_limit) {
      if (static_cast<std::size_t>(fd) < dense_.size()) dense_[static_cast<std::size_t>(fd)] = T{};
    } else {
      sparse_.erase(fd);
    }
  }
  template <class F>
  void for_each(F&& f) {
    for (std::size_t i = 0; i < dense_.size(); ++i) f(static_cast<int>(i), dense_[i]);
    for (auto& [fd, v] : sparse_) f(fd, v);
  }

 private:
  std::vector<T> dense_;
  std::unordered_map<int, T> sparse_;
};

}  // namespace tulipa::detail
