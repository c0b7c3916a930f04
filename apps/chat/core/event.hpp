// What the hub tells a client, before it is put in the client's wire format (format.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "message.hpp"

namespace chat {

struct RoomInfo {
  std::string name{};
  std::size_t members = 0;
};

struct Event {
  enum class Type : std::uint8_t {
    message,      // `message`; `history` when replayed on join
    notice,       // `text` from the server
    error,        // `text`: a refused command or line, a warning, the reason of a disconnection
    you_are,      // `nick`: the client's own name (after connecting or /nick)
    joined,       // `nick` joined `room`
    left,         // `nick` left `room`, `text` the reason (may be empty)
    renamed,      // `nick` is now `other` (in `room`)
    members,      // `names` are in `room`, of `count` members (a big room's list is a part of it)
    rooms,        // `rooms`
    private_in,   // `nick` sent `text` to this client
    private_out,  // this client sent `text` to `nick`
    history,      // `count` messages of `room` follow (replay on join)
  };
  Type type = Type::notice;
  bool history = false;
  const Message* message = nullptr;
  std::string_view room{};
  std::string_view nick{};
  std::string_view other{};
  std::string_view text{};
  std::span<const std::string> names{};
  std::span<const RoomInfo> rooms{};
  std::int64_t time_ms = 0;
  std::size_t count = 0;
};

}  // namespace chat
