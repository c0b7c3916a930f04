// Time in tulipa: a monotonic clock with nanosecond resolution, and a virtual clock tests can advance.
#pragma once

#include <chrono>
#include <cstdint>

namespace tulipa {

// Durations and instants are std::chrono types on the monotonic clock, so that `call_later(50ms, ...)` reads
// naturally and no one mixes seconds with milliseconds.
using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

// The source of `EventLoop::time()`. The default is the system's monotonic clock; a test installs a VirtualClock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const noexcept = 0;
  // A virtual clock never lets the loop sleep in the selector: the loop polls with a zero timeout, and when
  // nothing is ready it asks the clock to jump to the next deadline (see VirtualClock::auto_advance).
  virtual bool is_virtual() const noexcept { return false; }
  // Called by the loop when it would have slept until `deadline` (or forever: deadline == TimePoint::max()).
  // Returns true if time moved, so the loop goes round again at once.
  virtual bool sleep_until(TimePoint /*deadline*/) noexcept { return false; }
};

class SteadyClock final : public Clock {
 public:
  TimePoint now() const noexcept override {
    return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
  }
};

// A clock the test moves by hand. With auto_advance on, a loop that has nothing to do but wait for a timer jumps
// straight to that timer's deadline (trio's "autojump"), so a test of a 30-second timeout runs in microseconds.
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(TimePoint start = TimePoint{} + std::chrono::hours(1), bool auto_advance = false)
      : now_(start), auto_advance_(auto_advance) {}
  TimePoint now() const noexcept override { return now_; }
  bool is_virtual() const noexcept override { return true; }
  bool sleep_until(TimePoint deadline) noexcept override {
    if (!auto_advance_ || deadline == TimePoint::max() || deadline <= now_) return false;
    now_ = deadline;
    return true;
  }
  void advance(Duration d) noexcept { now_ += d; }
  void set_auto_advance(bool on) noexcept { auto_advance_ = on; }

 private:
  TimePoint now_;
  bool auto_advance_;
};

}  // namespace tulipa
