// The opening handshake (RFC 6455 section 4) and permessage-deflate's negotiation (RFC 7692 section 5), sans I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tulipa/http/websocket.hpp"

namespace tulipa::websocket::detail {

// base64(SHA-1(key + the RFC's GUID)). SHA-1 is written here (30 lines) so that the component needs no crypto
// library for a checksum that protects nothing (it only proves the server speaks WebSocket).
std::string accept_key(std::string_view key);
// 16 random bytes, base64 (arc4random: the kernel's randomness).
std::string generate_key();
bool valid_client_key(std::string_view key);

bool iequals(std::string_view a, std::string_view b) noexcept;
// Does the comma-separated `list` hold `token` (case-insensitive)?
bool has_token(std::string_view list, std::string_view token) noexcept;
std::string_view trim(std::string_view s) noexcept;

// What both sides agreed for permessage-deflate.
struct DeflateParams {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::uint8_t server_max_window_bits = 15;
  std::uint8_t client_max_window_bits = 15;
};

// Server: picks the first acceptable permessage-deflate offer of `header`; returns the agreed parameters and the
// response's extension value, or nullopt (no deflate).
std::optional<std::pair<DeflateParams, std::string>> negotiate_deflate(std::string_view header,
                                                                       const DeflateOptions& ours);
// Client: the offer to send.
std::string deflate_offer(const DeflateOptions& ours);
// Client: checks the server's answer against what we offered; nullopt if it is not acceptable (then the
// handshake fails), else the agreed parameters.
std::optional<DeflateParams> accept_deflate_response(std::string_view header, const DeflateOptions& ours);

// A parsed HTTP head (request or response), views into the caller's buffer.
struct HttpHead {
  std::string_view first_line;
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view get(std::string_view name) const noexcept;
  // All values of `name` joined with ", " (Sec-WebSocket-Extensions may come in several lines).
  std::string get_all(std::string_view name) const;
};
// Parses a head ending with CRLF CRLF (exclusive of it). Strict: CRLF line ends, token header names, no obs-fold.
std::optional<HttpHead> parse_head(std::string_view head);

}  // namespace tulipa::websocket::detail
