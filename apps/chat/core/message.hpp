// A message as it is stored and replayed: a room message, or a private one (`to` set).
#pragma once

#include <cstdint>
#include <string>

namespace chat {

struct Message {
  // Given by the store. `id` increases in the order the store accepted the messages (across rooms); `seq` is the
  // message's place in its room (1, 2, 3, ... with no gap), so that an instance that hears of a room's messages
  // from elsewhere (the Redis bus) knows when one is missing. Within a room, id and seq increase together.
  std::uint64_t id = 0;
  std::uint64_t seq = 0;     // 0 for a private message
  std::int64_t time_ms = 0;  // Unix time in milliseconds, set by the server when the line arrived
  std::string room{};        // the room's folded name (text.hpp), without '#'; empty for a private message
  std::string nick{};        // the sender
  std::string text{};        // sanitised (text.hpp)
  std::string to{};          // a private message's recipient (its nick); empty for a room message
  bool action = false;       // a /me line
};

}  // namespace chat
