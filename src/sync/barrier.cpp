// Barrier: a line-by-line port of asyncio.Barrier (3.11+), on a Condition.
#include <exception>
#include <stdexcept>

#include "tulipa/sync.hpp"

namespace tulipa {

Barrier::Barrier(std::size_t parties) : parties_(parties) {
  if (parties < 1) throw std::invalid_argument("Barrier: parties must be >= 1");
}

Coro<std::size_t> Barrier::wait() {
  auto held = co_await cond_.scoped();
  co_await block();  // wait while the barrier drains or resets
  std::size_t index = count_++;
  std::exception_ptr error;
  try {
    if (index + 1 == parties_) {
      // The last party: release everyone.
      state_ = State::draining;
      cond_.notify_all();
    } else {
      co_await wait_released();
    }
  } catch (...) {
    error = std::current_exception();
  }
  --count_;
  exit();
  if (error) std::rethrow_exception(error);
  co_return index;
}

Coro<void> Barrier::block() {
  co_await cond_.wait_for([this] { return state_ != State::draining && state_ != State::resetting; });
  if (state_ == State::broken) throw BrokenBarrierError("Barrier aborted");
}

Coro<void> Barrier::wait_released() {
  co_await cond_.wait_for([this] { return state_ != State::filling; });
  if (state_ == State::broken || state_ == State::resetting) {
    throw BrokenBarrierError("Abort or reset of barrier");
  }
}

void Barrier::exit() noexcept {
  if (count_ == 0) {
    if (state_ == State::resetting || state_ == State::draining) state_ = State::filling;
    cond_.notify_all();
  }
}

Coro<void> Barrier::reset() {
  auto held = co_await cond_.scoped();
  if (count_ > 0) {
    state_ = State::resetting;  // wake the waiters; they raise BrokenBarrierError
  } else {
    state_ = State::filling;
  }
  cond_.notify_all();
}

Coro<void> Barrier::abort() {
  auto held = co_await cond_.scoped();
  state_ = State::broken;
  cond_.notify_all();
}

}  // namespace tulipa
