// The two wire formats of the chat, one function each; both append to `out`.
//
// line (TCP clients): one line per event, ending in "\n". A user's message starts with its time and room
// ("12:34:56 #lobby <alice> hi"); server lines start with "* " (information) or "! " (errors); user text is
// sanitised (text.hpp), so it can never start a line of its own or carry escape codes.
// json (WebSocket clients): one JSON object per event and line, {"type": ..., ...}; every string is JSON-escaped and
// the page renders it as text, never as HTML.
#pragma once

#include <cstdint>
#include <string>

#include "event.hpp"

namespace chat {

enum class WireFormat : std::uint8_t { line, json };

void format_line(const Event& e, std::string& out);
void format_json(const Event& e, std::string& out);
inline void format(const Event& e, WireFormat f, std::string& out) {
  f == WireFormat::line ? format_line(e, out) : format_json(e, out);
}

// "12:34:56" (UTC) of a Unix time in milliseconds.
std::string clock_time(std::int64_t time_ms);
// JSON string literal of `s` (with its quotes).
void append_json_string(std::string& out, std::string_view s);

}  // namespace chat
