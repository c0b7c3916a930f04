// Mailbox<T>: typed messages to one loop from any thread (another loop of a LoopGroup, a worker), without allocating.
//
//   tulipa::Mailbox<Job> inbox(loop, 1024, [](Job&& job) { ... });  // made on (or for) `loop`; runs on it
//   inbox.try_send(Job{...});                                        // any thread; false when the box is full
//
// The box is a bounded ring of `capacity` slots (a power of two at least that large), lock-free for any number of
// senders (Vyukov's bounded MPMC queue: one atomic sequence per slot, no lock, no allocation after construction).
// The handler runs on the owner loop, in the loop's ready phase, once per message, in each sender's order. A sender
// wakes the loop only for the first message of a batch: one call_soon_threadsafe (which costs a system call only
// when the loop sleeps) per drain, however many messages it carries. A handler that throws goes to the loop's
// exception handler; the other messages are still delivered.
//
// Back pressure: try_send returns false when the box is full and leaves `value` untouched; the sender decides
// (retry later, drop, count). A drain delivers at most `capacity` messages per loop pass, so a flood from other
// threads cannot starve the owner's I/O.
//
// Lifetimes: the box must outlive every try_send and the owner loop's last pass (a drain may be queued on it):
// destroy it after the owner loop stopped for good (after LoopGroup::join, say). Messages still in the box then are
// destroyed without being handled.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "tulipa/loop.hpp"

namespace tulipa {

template <class T>
class Mailbox {
  static_assert(std::is_nothrow_move_constructible_v<T>, "a message type must be nothrow move constructible");

 public:
  using Handler = std::function<void(T&&)>;

  Mailbox(EventLoop& owner, std::size_t capacity, Handler handler)
      : owner_(owner),
        mask_(std::bit_ceil(capacity < 2 ? std::size_t(2) : capacity) - 1),
        cells_(std::make_unique<Cell[]>(mask_ + 1)),
        handler_(std::move(handler)) {
    if (!handler_) throw std::invalid_argument("Mailbox: no handler");
    for (std::size_t i = 0; i <= mask_; ++i) cells_[i].sequence.store(i, std::memory_order_relaxed);
  }
  ~Mailbox() {
    while (Cell* c = claim_front()) release_front(c, nullptr);
  }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Any thread. Constructs a T from `value` in a free slot and returns true, or returns false when the box is full
  // (value untouched). Throws only what T's construction from `value` throws (std::logic_error if the owner loop
  // was closed, when this send had to wake it).
  template <class U>
  bool try_send(U&& value) {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    Cell* cell;
    for (;;) {
      cell = &cells_[pos & mask_];
      const std::size_t seq = cell->sequence.load(std::memory_order_acquire);
      const std::ptrdiff_t diff = std::ptrdiff_t(seq) - std::ptrdiff_t(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
    ::new (static_cast<void*>(cell->storage)) T(std::forward<U>(value));
    cell->sequence.store(pos + 1, std::memory_order_release);
    if (!scheduled_.exchange(true, std::memory_order_seq_cst)) owner_.call_soon_threadsafe([this] { drain(); });
    return true;
  }

  EventLoop& owner() const noexcept { return owner_; }
  std::size_t capacity() const noexcept { return mask_ + 1; }

 private:
  struct Cell {
    std::atomic<std::size_t> sequence{0};
    alignas(T) unsigned char storage[sizeof(T)];
  };

  // Owner thread: the oldest complete message, or null.
  Cell* claim_front() noexcept {
    Cell* cell = &cells_[head_ & mask_];
    const std::size_t seq = cell->sequence.load(std::memory_order_acquire);
    return seq == head_ + 1 ? cell : nullptr;
  }
  // Owner thread: hands the message to `out` (or destroys it) and frees the slot for the senders.
  void release_front(Cell* cell, T* out) noexcept {
    T* item = std::launder(reinterpret_cast<T*>(cell->storage));
    if (out != nullptr) ::new (static_cast<void*>(out)) T(std::move(*item));
    item->~T();
    cell->sequence.store(head_ + mask_ + 1, std::memory_order_release);
    ++head_;
  }

  void drain() {
    // Cleared before looking: a message sent after the last look below sees `false` and schedules the next drain.
    scheduled_.store(false, std::memory_order_seq_cst);
    for (std::size_t n = 0; n <= mask_; ++n) {
      Cell* cell = claim_front();
      if (cell == nullptr) return;
      alignas(T) unsigned char buffer[sizeof(T)];
      T* message = reinterpret_cast<T*>(buffer);
      release_front(cell, message);
      try {
        handler_(std::move(*message));
      } catch (...) {
        ErrorContext ctx;
        ctx.message = "Exception in a Mailbox handler";
        ctx.exception = std::current_exception();
        owner_.call_exception_handler(ctx);
      }
      message->~T();
    }
    // A full batch: the rest waits for the next pass (the owner's I/O goes first).
    if (claim_front() != nullptr && !scheduled_.exchange(true, std::memory_order_seq_cst))
      owner_.call_soon([this] { drain(); });
  }

  EventLoop& owner_;
  const std::size_t mask_;
  std::unique_ptr<Cell[]> cells_;
  Handler handler_;
  alignas(64) std::atomic<std::size_t> tail_{0};  // senders
  alignas(64) std::size_t head_ = 0;              // the owner loop
  std::atomic<bool> scheduled_{false};            // a drain is queued on the owner loop
};

}  // namespace tulipa
