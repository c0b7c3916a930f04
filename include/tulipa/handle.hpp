// Handles: what call_soon / call_later / call_at return, to cancel a scheduled callback.
//
// A Handle refers to a slot in its loop's handle pool; slots are recycled, and each carries a generation number so
// that cancelling through a handle whose callback already ran (and whose slot now serves another callback) does
// nothing. Handles are move-only and cheap (two words and a flag). Dropping a handle does not cancel the callback,
// as in asyncio. A Handle must not be used after its loop is destroyed.
#pragma once

#include <cstdint>
#include <utility>

#include "tulipa/clock.hpp"

namespace tulipa {

namespace detail {
struct HandleNode;
}

class Handle {
 public:
  Handle() noexcept = default;
  Handle(Handle&& o) noexcept
      : node_(std::exchange(o.node_, nullptr)), generation_(o.generation_), cancelled_(o.cancelled_) {}
  Handle& operator=(Handle&& o) noexcept {
    node_ = std::exchange(o.node_, nullptr);
    generation_ = o.generation_;
    cancelled_ = o.cancelled_;
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
  explicit operator bool() const noexcept { return node_ != nullptr; }

 protected:
  friend class EventLoop;
  Handle(detail::HandleNode* node, std::uint32_t generation) noexcept : node_(node), generation_(generation) {}

  detail::HandleNode* node_ = nullptr;
  std::uint32_t generation_ = 0;
  bool cancelled_ = false;
};

// A Handle for a timed callback; cancel() takes the timer out of the loop's heap at once, so cancelled timers never
// pile up.
class TimerHandle : public Handle {
 public:
  TimerHandle() noexcept = default;
  TimePoint when() const noexcept { return when_; }

 private:
  friend class EventLoop;
  TimerHandle(detail::HandleNode* node, std::uint32_t generation, TimePoint when) noexcept
      : Handle(node, generation), when_(when) {}
  TimePoint when_{};
};

}  // namespace tulipa
