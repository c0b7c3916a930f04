// sleep(): asyncio.sleep. `co_await sleep(50ms)` suspends the task for at least that long; sleep(0) (or any
// non-positive delay) yields to the loop once, letting every other ready callback run. Cancellable: cancelling the
// task cancels the timer and raises CancelledError at the co_await.
#pragma once

#include <coroutine>
#include <iosfwd>

#include "tulipa/clock.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/handle.hpp"

namespace tulipa {

class [[nodiscard]] SleepAwaiter final : public Suspension {
 public:
  SleepAwaiter(TimePoint when, bool absolute, Duration delay) noexcept
      : when_(when), delay_(delay), absolute_(absolute) {}
  SleepAwaiter(SleepAwaiter&&) = default;
  ~SleepAwaiter() { handle_.cancel(); }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  // sleep(0) is woken as it suspends (so that it resumes in the next iteration): a cancel() before the task runs
  // again raises here, as asyncio's bare yield does. A timed sleep whose timer fired keeps the protocol's rule (the
  // wake-up wins; the cancellation comes at the next suspension point).
  void await_resume() const {
    check_cancelled();
    if (!absolute_ && delay_ <= Duration::zero()) raise_pending_cancel();
  }
  void describe(std::ostream& os) const override;

 private:
  Cancel on_cancel() noexcept override {
    handle_.cancel();
    return Cancel::detached;
  }
  TimePoint when_;
  Duration delay_;
  bool absolute_;
  Handle handle_;
};

inline SleepAwaiter sleep(Duration delay) noexcept { return SleepAwaiter(TimePoint{}, false, delay); }
inline SleepAwaiter sleep_until(TimePoint when) noexcept { return SleepAwaiter(when, true, Duration::zero()); }

}  // namespace tulipa
