// Text rules of the chat: what a client's line may carry to others, and what a nick or a room name is.
// Pure functions, no state: the line parser's fuzz target (fuzz/chat_line_fuzz.cpp) drives them directly.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace chat {

// Makes `in` safe to show on anyone's terminal or page: invalid UTF-8 (overlong forms, surrogates, truncated
// sequences, bytes above U+10FFFF) becomes U+FFFD; C0 and C1 control characters, DEL, and the Unicode
// bidirectional overrides (U+202A..U+202E, U+2066..U+2069, which reorder what follows them) are shown escaped as
// "\xNN" or "\u{NNNN}", so an ANSI escape sequence arrives as harmless text ("\x1b[2J"). A tab becomes a space.
// The result never contains a byte below 0x20 or a newline, so one message is always one line.
std::string sanitize(std::string_view in);

// A nick: 1 to `max_len` ASCII letters, digits, '_' or '-', starting with a letter; "guest-..." is kept for the
// names the server hands out. Returns the reason it is refused, or an empty view when it is acceptable.
std::string_view nick_error(std::string_view nick, std::size_t max_len);
// A room: 1 to `max_len` ASCII letters, digits, '_' or '-' after an optional leading '#'.
std::string_view room_error(std::string_view room, std::size_t max_len);

// The key under which nicks and rooms are unique: ASCII lower case ("Alice" and "alice" are one nick). Nicks and
// rooms are ASCII by the rules above, so this is a full case fold for them.
std::string fold(std::string_view name);

// Removes spaces and tabs at both ends.
std::string_view trim(std::string_view s) noexcept;

}  // namespace chat
