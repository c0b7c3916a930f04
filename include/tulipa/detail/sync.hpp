// Internals of tulipa/sync.hpp (the library's, not part of the contract).
#pragma once

#include <coroutine>
#include <cstddef>
#include <iosfwd>
#include <stdexcept>
#include <utility>

#include "tulipa/coro.hpp"

namespace tulipa::detail {

// A node of an intrusive FIFO of waiters. The list never owns its nodes.
struct WaitNode {
  WaitNode* prev = nullptr;
  WaitNode* next = nullptr;
  bool linked = false;
};

class WaitList {
 public:
  WaitList() noexcept = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  WaitNode* front() const noexcept { return head_; }
  void push_back(WaitNode& n) noexcept {
    n.prev = tail_;
    n.next = nullptr;
    if (tail_) {
      tail_->next = &n;
    } else {
      head_ = &n;
    }
    tail_ = &n;
    n.linked = true;
    ++size_;
  }
  // No-op for a node that is not linked.
  void remove(WaitNode& n) noexcept {
    if (!n.linked) return;
    if (n.prev) {
      n.prev->next = n.next;
    } else {
      head_ = n.next;
    }
    if (n.next) {
      n.next->prev = n.prev;
    } else {
      tail_ = n.prev;
    }
    n.prev = n.next = nullptr;
    n.linked = false;
    --size_;
  }
  WaitNode* pop_front() noexcept {
    WaitNode* n = head_;
    if (n) remove(*n);
    return n;
  }

 private:
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
  std::size_t size_ = 0;
};

// A leaf awaiter that sits in a WaitList: Suspension + node, with wake() reachable by its primitive.
// Movable only before it suspends (g++ moves the awaitable out of await_transform), when it is not linked yet.
class Waiter : public Suspension, public WaitNode {
 public:
  Waiter() noexcept = default;
  Waiter(Waiter&&) noexcept = default;
  using Suspension::parked;
  using Suspension::wake;
  using Suspension::woken;

 protected:
  ~Waiter() = default;
};

}  // namespace tulipa::detail
