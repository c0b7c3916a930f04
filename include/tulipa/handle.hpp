// Handles: what call_soon / call_later / call_at return, to cancel a scheduled callback.
//
// A Handle refers to a slot in its loop's handle pool by number; slots are recycled, and each carries a generation
// number so that cancelling through a handle whose callback already ran (and whose slot now serves another callback,
// or whose memory the loop gave back after a burst) does nothing. Handles are move-only and cheap (two words). Dropping
// a handle does not cancel the callback, as in asyncio. A Handle must not be used after its loop is destroyed.
#pragma once

#include <cstdint>
#include <utility>

#include "tulipa/clock.hpp"

namespace tulipa {

namespace detail {
class HandlePool;
}

class Handle {
 public:
  Handle() noexcept = default;
  Handle(Handle&& o) noexcept
      : pool_(std::exchange(o.pool_, nullptr)), slot_(o.slot_), cancelled_(o.cancelled_), generation_(o.generation_) {}
  Handle& operator=(Handle&& o) noexcept {
    pool_ = std::exchange(o.pool_, nullptr);
    slot_ = o.slot_;
    cancelled_ = o.cancelled_;
    generation_ = o.generation_;
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  // Cancels the callback if it has not run yet. Idempotent; safe after the callback ran.
  void cancel() noexcept;
  // True once cancel() was called through this handle.
  bool cancelled() const noexcept { return cancelled_; }
  // True while the callback is scheduled and neither ran nor was cancelled.
  bool pending() const noexcept;
  explicit operator bool() const noexcept { return pool_ != nullptr; }

 protected:
  friend class EventLoop;
  Handle(detail::HandlePool* pool, std::uint32_t slot, std::uint32_t generation) noexcept
      : pool_(pool), slot_(slot), generation_(generation) {}

  detail::HandlePool* pool_ = nullptr;
  std::uint32_t slot_ : 31 = 0;  // the pool holds fewer than 2^31 slots
  std::uint32_t cancelled_ : 1 = 0;
  std::uint32_t generation_ = 0;
};

// A Handle for a timed callback; cancel() takes the timer out of the loop's heap at once, so cancelled timers never
// pile up.
class TimerHandle : public Handle {
 public:
  TimerHandle() noexcept = default;
  TimePoint when() const noexcept { return when_; }

 private:
  friend class EventLoop;
  TimerHandle(detail::HandlePool* pool, std::uint32_t slot, std::uint32_t generation, TimePoint when) noexcept
      : Handle(pool, slot, generation), when_(when) {}
  TimePoint when_{};
};

}  // namespace tulipa
