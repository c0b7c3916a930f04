// Flood control for one client: a token bucket of lines. A line finds a token (at once) or must wait for one;
// `strikes` counts the lines that had to wait since the client last paused, which the hub turns into a warning and
// then a disconnection. "Paused" means the bucket refilled to half its burst: a flooder that is slowed to exactly
// the rate (its lines wait for each token) never gets there, so its strikes keep counting, while someone who pastes
// a few lines now and then starts over each time.
#pragma once

#include <algorithm>
#include <chrono>

#include "tulipa/clock.hpp"

namespace chat {

struct FloodGate {
  double tokens = 0;     // negative: lines were let through on credit and wait for it
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
    if (tokens >= burst / 2) strikes = 0;
    last = now;
    tokens -= 1;
    if (tokens >= 0) return tulipa::Duration::zero();
    ++strikes;
    return std::chrono::duration_cast<tulipa::Duration>(std::chrono::duration<double>(-tokens / rate));
  }
};

}  // namespace chat
