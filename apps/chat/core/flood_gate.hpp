// Flood control for one client: a token bucket that counts bytes as well as lines. A line costs one token, or its
// size in "lines' worth" of bytes (Limits::flood_line_bytes a token) when that is more, so that a client writing a
// few huge lines and one writing many tiny ones are slowed alike: whichever of the two it exceeds first.
// A line finds its tokens (at once) or must wait for them; `strikes` counts the tokens that had to wait since the
// client last paused, which the hub turns into a warning and then a disconnection (in tokens, so a few huge lines
// reach them as fast as the same bytes in many small lines). "Paused" means the bucket refilled to half its burst:
// a flooder that is slowed to exactly the rate (its lines wait for each token) never gets there, so its strikes
// keep counting, while someone who pastes a few lines now and then starts over each time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

#include "tulipa/clock.hpp"

namespace chat {

struct FloodGate {
  double tokens = 0;     // negative: lines were let through on credit and wait for it
  bool started = false;  // the bucket starts full
  tulipa::TimePoint last{};
  double strikes = 0;

  // What a line of `bytes` costs: one token, or bytes / line_bytes when that is more.
  static double cost(std::size_t bytes, std::size_t line_bytes) {
    return std::max(1.0, static_cast<double>(bytes) / static_cast<double>(std::max<std::size_t>(1, line_bytes)));
  }

  // Takes `cost` tokens for one line; returns how long the line must wait for them (zero: it goes at once).
  tulipa::Duration take(tulipa::TimePoint now, double rate, double burst, double cost = 1) {
    if (!started) {
      started = true;
      tokens = burst;
    } else {
      std::chrono::duration<double> elapsed = now - last;
      tokens = std::min(burst, tokens + elapsed.count() * rate);
    }
    if (tokens >= burst / 2) strikes = 0;
    last = now;
    double before = tokens;
    tokens -= cost;
    if (tokens >= 0) return tulipa::Duration::zero();
    strikes += before > 0 ? -tokens : cost;  // the part of the cost that had to wait
    return std::chrono::duration_cast<tulipa::Duration>(std::chrono::duration<double>(-tokens / rate));
  }
};

}  // namespace chat
