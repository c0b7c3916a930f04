// Converting a selector timeout (Duration, Selector::forever) into what the system calls take.
#pragma once

#include <chrono>
#include <climits>
#include <ctime>

#include "tulipa/selector.hpp"

namespace tulipa::detail {

// Selector::forever (exactly Duration{-1}) blocks; any other negative timeout is a deadline already past.
inline bool is_forever(Duration timeout) noexcept { return timeout == Selector::forever; }

// For epoll_pwait2 and ppoll. Precondition: !is_forever(timeout).
inline timespec to_timespec(Duration timeout) noexcept {
  if (timeout < Duration::zero()) timeout = Duration::zero();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(secs.count());
  ts.tv_nsec = static_cast<long>((timeout - secs).count());
  return ts;
}

// For epoll_wait: whole milliseconds rounded UP, so that the wait never ends before the deadline (rounding down
// would wake the loop a fraction of a millisecond early, find no timer due, and spin on zero timeouts until it is).
// Clamped to INT_MAX ms (about 24.8 days): a longer wait returns early with nothing ready and the loop waits again.
inline int to_epoll_ms(Duration timeout) noexcept {
  if (is_forever(timeout)) return -1;
  if (timeout <= Duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

}  // namespace tulipa::detail
