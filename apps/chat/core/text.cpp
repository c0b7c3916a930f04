#include "text.hpp"

#include <cstdint>
#include <cstdio>

namespace chat {
namespace {

void escape_byte(std::string& out, unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", c);
  out += buf;
}

void escape_code_point(std::string& out, std::uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\u{%04x}", static_cast<unsigned>(cp));
  out += buf;
}

constexpr std::string_view replacement = "\xEF\xBF\xBD";  // U+FFFD

// Decodes one UTF-8 sequence at the start of `in`. Returns its length and sets `cp`, or 0 when the bytes are not
// a well-formed sequence (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t decode(std::string_view in, std::uint32_t& cp) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(in[i]); };
  auto cont = [&](std::size_t i) { return i < in.size() && (b(i) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF && cont(1)) {
    cp = ((c & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF && cont(1) && cont(2)) {
    cp = ((c & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    cp = ((c & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    if (cp < 0x10000 || cp > 0x10FFFF) return 0;
    return 4;
  }
  return 0;
}

bool is_bidi_control(std::uint32_t cp) { return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069); }

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
bool letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

std::string sanitize(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  while (!in.empty()) {
    std::uint32_t cp = 0;
    std::size_t n = decode(in, cp);
    if (n == 0) {
      out += replacement;
      in.remove_prefix(1);
      continue;
    }
    if (cp == '\t') {
      out += ' ';
    } else if (cp < 0x20 || cp == 0x7F) {
      escape_byte(out, static_cast<unsigned char>(cp));
    } else if ((cp >= 0x80 && cp <= 0x9F) || is_bidi_control(cp)) {
      escape_code_point(out, cp);
    } else {
      out.append(in.substr(0, n));
    }
    in.remove_prefix(n);
  }
  return out;
}

std::string_view nick_error(std::string_view nick, std::size_t max_len) {
  if (nick.empty()) return "a nick cannot be empty";
  if (nick.size() > max_len) return "that nick is too long";
  if (!letter(nick.front())) return "a nick starts with a letter";
  for (char c : nick) {
    if (!name_char(c)) return "a nick has only letters, digits, _ and -";
  }
  if (fold(nick).starts_with("guest-")) return "guest-... names are given by the server";
  return {};
}

std::string_view room_error(std::string_view room, std::size_t max_len) {
  if (room.starts_with('#')) room.remove_prefix(1);
  if (room.empty()) return "a room name cannot be empty";
  if (room.size() > max_len) return "that room name is too long";
  for (char c : room) {
    if (!name_char(c)) return "a room name has only letters, digits, _ and -";
  }
  return {};
}

std::string fold(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace chat
