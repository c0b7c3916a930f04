// Flood control for one client: a token bucket of lines. A line finds a token (at once) or must wait for one;
// `strikes` counts the lines in a row that had to wait, which the hub turns into a warning and then a
// disconnection. A client that pauses long enough for a line to pass without waiting starts over.
#pragma once

#include <algorithm>
#include <chrono>

#include "tulipa/clock.hpp"

namespace chat {

struct FloodGate {
  double tokens = 0;  // negative: lines were let through on credit and wait for it
  bool started = false;  // the bucket starts full
  tulipa::TimePoint last{};
  unsigned strikes = 0;

  // Takes a token for one line; returns how long the line must wait for it (zero: it goes at once).
  tulipa::Duration take(tulipa::TimePoint now, double rate, double burst) {
    if (!started) {
      started = true;
      tokens = burst;
    } else {
      std::chrono::duration<double> elapsed = now - last;
      tokens = std::min(burst, tokens + elapsed.count() * rate);
    }
    last = now;
    tokens -= 1;
    if (tokens >= 0) {
      strikes = 0;
      return tulipa::Duration::zero();
    }
    ++strikes;
    return std::chrono::duration_cast<tulipa::Duration>(std::chrono::duration<double>(-tokens / rate));
  }
};

}  // namespace chat
