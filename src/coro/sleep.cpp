#include "tulipa/sleep.hpp"

#include <chrono>
#include <ostream>

#include "tulipa/loop.hpp"

namespace tulipa {

bool SleepAwaiter::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  EventLoop& loop = task()->loop();
  // The timer callback holds a pointer to this awaiter: on_cancel() and the destructor cancel the timer first.
  if (absolute_) {
    handle_ = loop.call_at(when_, [this] { wake(); });
  } else if (delay_ <= Duration::zero()) {
    // asyncio.sleep(0): yield to the loop once. Woken at once, the task's step is the one callback scheduled, so it
    // resumes in the next iteration (a callback that woke it would be a second hop).
    wake();
  } else {
    handle_ = loop.call_later(delay_, [this] { wake(); });
  }
  return true;
}

void SleepAwaiter::describe(std::ostream& os) const {
  using Ms = std::chrono::duration<double, std::milli>;
  if (absolute_) {
    os << "sleep_until(+" << Ms(when_.time_since_epoch()).count() << "ms on the loop clock)";
  } else {
    os << "sleep(" << Ms(delay_).count() << "ms)";
  }
}

}  // namespace tulipa
