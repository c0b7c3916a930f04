// Writes to a connection that is gone (or going: close() flushed, abort, error) are dropped, as asyncio does (a
// broadcast to a departing peer is not an error), but not silently: the transport counts them and logs the fifth,
// once (asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES and its "socket.send() raised exception." warning), so a
// program that keeps writing into a dead connection shows up in the log. One byte per transport.
#pragma once

#include <cstdint>
#include <string>

#include "tulipa/loop.hpp"

namespace tulipa::detail {

inline constexpr std::uint8_t lost_writes_logged_at = 5;

// Counts one dropped write in `count` (saturating) and logs when it reaches lost_writes_logged_at.
inline void count_lost_write(EventLoop& loop, std::uint8_t& count, const char* transport) noexcept {
  if (count == UINT8_MAX) return;
  if (++count == lost_writes_logged_at) {
    loop.log(std::string(transport) +
             ": socket.send() raised exception: 5 writes after the connection was lost were dropped (logged once)");
  }
}

}  // namespace tulipa::detail
