// WriteFlow: the write side's flow control (asyncio's high/low-water marks), one piece for the readiness transport
// (SocketTransport) and the completion one (UringSocketTransport), which differ in how they send, not in when they
// tell their protocol to pause or resume writing.
//
// The state stays in the transport, whose layout is budgeted in bytes: T has `queue_` (its size() is what is
// buffered), `high_` and `low_` (std::uint32_t), `protocol_paused_`, `protocol_` (a StreamProtocol*), and
// `protocol_error(what, exc)`, which reports a protocol method that threw and aborts the connection. A transport
// befriends `template <class> friend struct WriteFlow`.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>

namespace tulipa::detail {

template <class T>
struct WriteFlow {
  // Transport::set_write_buffer_limits: `low` defaults to a quarter of `high` (SIZE_MAX means "not given").
  static void set_limits(T& t, std::size_t high, std::size_t low) {
    if (low == SIZE_MAX) low = high / 4;
    if (low > high) throw std::invalid_argument("transport: low-water mark above the high-water mark");
    constexpr std::size_t cap = UINT32_MAX;  // limits are kept in 32 bits (per-connection memory budget)
    t.high_ = static_cast<std::uint32_t>(std::min(high, cap));
    t.low_ = static_cast<std::uint32_t>(std::min(low, cap));
    maybe_pause(t);
    maybe_resume(t);
  }

  // pause_writing once the buffer grew above the high-water mark.
  static void maybe_pause(T& t) {
    if (t.protocol_paused_ || t.queue_.size() <= t.high_) return;
    t.protocol_paused_ = true;
    try {
      t.protocol_->pause_writing();
    } catch (...) {
      t.protocol_error("protocol.pause_writing() failed", std::current_exception());
    }
  }

  // resume_writing once it drained to the low-water mark.
  static void maybe_resume(T& t) {
    if (!t.protocol_paused_ || t.queue_.size() > t.low_) return;
    t.protocol_paused_ = false;
    try {
      t.protocol_->resume_writing();
    } catch (...) {
      t.protocol_error("protocol.resume_writing() failed", std::current_exception());
    }
  }
};

}  // namespace tulipa::detail
