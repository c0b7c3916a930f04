// PreparedMessage's shared state: the frame, built once, and its compressed forms, built on first use per
// compressor window size (a fresh compressor each, so that any receiver can inflate it).
#pragma once

#include <array>
#include <span>
#include <vector>

#include "tulipa/http/websocket.hpp"

namespace tulipa::websocket {

struct PreparedMessage::Shared {
  bool text = false;
  std::size_t header_size = 0;
  std::vector<std::byte> plain;                       // header + payload
  std::array<std::vector<std::byte>, 16> compressed;  // by window bits (9..15): header + compressed payload

  std::span<const std::byte> plain_frame() const noexcept { return plain; }
  std::span<const std::byte> payload() const noexcept { return std::span(plain).subspan(header_size); }
  std::span<const std::byte> compressed_frame(int window_bits);
};

}  // namespace tulipa::websocket
