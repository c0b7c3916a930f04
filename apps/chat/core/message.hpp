// A room message as it is stored and replayed.
#pragma once

#include <cstdint>
#include <string>

namespace chat {

struct Message {
  std::uint64_t id = 0;      // given by the store: increasing in the order the store accepted the messages
  std::int64_t time_ms = 0;  // Unix time in milliseconds, set by the server when the line arrived
  std::string room;          // the room's folded name (text.hpp), without '#'
  std::string nick;
  std::string text;     // sanitised (text.hpp)
  bool action = false;  // a /me line
};

}  // namespace chat
