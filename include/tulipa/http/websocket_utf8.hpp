// An incremental UTF-8 validator for WebSocket text messages (RFC 6455 section 8.1, RFC 3629).
//
// Why our own: Debian has no simdutf, and a text message arrives in pieces (frames, reads, inflated blocks) that may
// split a code point anywhere, so the validator must carry its state across calls and say "invalid" at the first
// byte after which no continuation could make the text valid (Autobahn 6.x "fail fast": a bad byte in the first
// fragment must close the connection before the last fragment arrives).
//
// How: a shift-based DFA (one 64-bit row per byte value; the state is the bit offset of the next state in the row,
// so a step is a load and a shift: no branch) over the 9 states of the minimal UTF-8 automaton. While the state is
// "between code points", 16 bytes at a time are checked for ASCII with two word loads and skipped whole. On a CPU
// with AVX2 (checked at run time), a call of 64 bytes or more that starts between code points goes through Keiser
// and Lemire's vector lookup algorithm instead (simdjson's validator: 32 bytes a step, non-ASCII text included),
// up to the start of a code point the call cuts short, which the DFA then carries into the next call.
// bench/ws_utf8_bench.cpp measures it beside a naive byte loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tulipa::websocket {

class Utf8Validator {
 public:
  // Feeds the next bytes. Returns false as soon as the bytes seen so far cannot start any valid UTF-8 text; the
  // validator then stays failed (every later call returns false) until reset().
  bool feed(std::span<const std::byte> data) noexcept {
    return feed(reinterpret_cast<const unsigned char*>(data.data()), data.size());
  }
  bool feed(std::string_view s) noexcept { return feed(reinterpret_cast<const unsigned char*>(s.data()), s.size()); }
  bool feed(const unsigned char* p, std::size_t n) noexcept;
  // True when everything fed is valid UTF-8 and ends on a code point boundary (a message may end here).
  bool complete() const noexcept { return state_ == 0; }
  bool failed() const noexcept { return state_ == reject; }
  void reset() noexcept { state_ = 0; }

  // The state offset of the rejecting state (a multiple of 6: the states are 6-bit fields of a row).
  static constexpr std::uint32_t reject = 6;

 private:
  std::uint32_t state_ = 0;
};

// Whole-buffer check.
bool is_valid_utf8(std::string_view s) noexcept;

}  // namespace tulipa::websocket
