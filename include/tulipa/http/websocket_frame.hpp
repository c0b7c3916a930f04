// WebSocket framing (RFC 6455 section 5), sans I/O: opcodes, close codes, frame headers and masking. What the
// connection (websocket.hpp) is built on, and what a raw-frame client (tests, fuzzers) uses to speak the wire format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tulipa::websocket {

enum class Opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

inline constexpr bool is_control(Opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 8) != 0; }

// Close status codes (RFC 6455 section 7.4, IANA registry).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;
inline constexpr std::uint16_t no_status = 1005;  // never on the wire: a close frame without a payload
inline constexpr std::uint16_t abnormal = 1006;   // never on the wire: the connection ended without a close frame
inline constexpr std::uint16_t invalid_data = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t mandatory_extension = 1010;
inline constexpr std::uint16_t internal_error = 1011;
inline constexpr std::uint16_t service_restart = 1012;
inline constexpr std::uint16_t try_again_later = 1013;
inline constexpr std::uint16_t bad_gateway = 1014;
}  // namespace close_code

// May `code` appear in a close frame? 1000-1003 and 1007-1014 (the IANA-registered ones; 1012-1014 are sent by
// servers restarting or shedding load, this library's slow-consumer drop included), and 3000-4999 (libraries and
// applications). 1004-1006, 1015 and everything else are refused with 1002.
inline constexpr bool is_valid_close_code(std::uint16_t code) noexcept {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

// The largest frame header: 2 bytes, 8 of extended length, 4 of masking key.
inline constexpr std::size_t max_frame_header = 14;
// Control frames carry at most 125 bytes (and are never fragmented).
inline constexpr std::size_t max_control_payload = 125;

struct FrameHeader {
  Opcode opcode = Opcode::binary;
  bool fin = true;
  bool rsv1 = false;  // permessage-deflate: set on the first frame of a compressed message
  bool rsv2 = false;
  bool rsv3 = false;
  bool masked = false;
  std::uint8_t mask[4] = {};
  std::uint64_t length = 0;
};

// Writes `h` into `out` (at least max_frame_header bytes) with the shortest length encoding; returns its size.
std::size_t write_frame_header(std::byte* out, const FrameHeader& h) noexcept;
// Parses a header from the start of `in`: its size, or 0 when `in` is too short to hold all of it. Any opcode and
// bit pattern is reported as it is; checking them is the connection's job.
std::size_t parse_frame_header(std::span<const std::byte> in, FrameHeader& h) noexcept;

// XORs `n` bytes at `p` with the masking key, starting at byte `offset` of the frame's payload (so that a payload
// unmasked in pieces gives the same result as at once). Word at a time.
void apply_mask(std::byte* p, std::size_t n, const std::uint8_t key[4], std::uint64_t offset) noexcept;
// The same, copying from `in` to `out` (they may be the same).
void copy_masked(std::byte* out, const std::byte* in, std::size_t n, const std::uint8_t key[4],
                 std::uint64_t offset) noexcept;

}  // namespace tulipa::websocket
