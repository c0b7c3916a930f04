// The shift DFA of websocket_utf8.hpp. States (index; the state value is 6 * index):
//   0 accept (between code points)  1 reject  2 one continuation byte left  3 two left  4 three left
//   5 after E0 (next A0..BF)  6 after ED (next 80..9F: no surrogates)  7 after F0 (next 90..BF: no overlong)
//   8 after F4 (next 80..8F: nothing above U+10FFFF)
// Row b holds, in its 6-bit field number s, the value of the state that byte b leads to from state s.
#include "tulipa/http/websocket_utf8.hpp"

#include <array>
#include <cstring>

namespace tulipa::websocket {
namespace {

constexpr std::uint32_t kAccept = 0, kReject = 1, kTail1 = 2, kTail2 = 3, kTail3 = 4, kE0 = 5, kEd = 6, kF0 = 7,
                        kF4 = 8;

constexpr std::uint32_t next_state(std::uint32_t s, unsigned b) {
  switch (s) {
    case kAccept:
      if (b < 0x80) return kAccept;
      if (b >= 0xC2 && b <= 0xDF) return kTail1;
      if (b == 0xE0) return kE0;
      if (b == 0xED) return kEd;
      if (b >= 0xE1 && b <= 0xEF) return kTail2;
      if (b == 0xF0) return kF0;
      if (b >= 0xF1 && b <= 0xF3) return kTail3;
      if (b == 0xF4) return kF4;
      return kReject;
    case kTail1:
      return (b >= 0x80 && b <= 0xBF) ? kAccept : kReject;
    case kTail2:
      return (b >= 0x80 && b <= 0xBF) ? kTail1 : kReject;
    case kTail3:
      return (b >= 0x80 && b <= 0xBF) ? kTail2 : kReject;
    case kE0:
      return (b >= 0xA0 && b <= 0xBF) ? kTail1 : kReject;
    case kEd:
      return (b >= 0x80 && b <= 0x9F) ? kTail1 : kReject;
    case kF0:
      return (b >= 0x90 && b <= 0xBF) ? kTail2 : kReject;
    case kF4:
      return (b >= 0x80 && b <= 0x8F) ? kTail2 : kReject;
    default:
      return kReject;
  }
}

constexpr std::array<std::uint64_t, 256> make_rows() {
  std::array<std::uint64_t, 256> rows{};
  for (unsigned b = 0; b < 256; ++b)
    for (std::uint32_t s = 0; s < 9; ++s) rows[b] |= std::uint64_t{next_state(s, b) * 6} << (s * 6);
  return rows;
}
constexpr std::array<std::uint64_t, 256> kRows = make_rows();
static_assert(Utf8Validator::reject == kReject * 6);

inline bool ascii16(const unsigned char* p) noexcept {
  std::uint64_t a, b;
  std::memcpy(&a, p, 8);
  std::memcpy(&b, p + 8, 8);
  return ((a | b) & 0x8080808080808080ULL) == 0;
}

}  // namespace

bool Utf8Validator::feed(const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t s = state_;
  const unsigned char* end = p + n;
  while (p != end) {
    if (s == 0) {
      while (end - p >= 16 && ascii16(p)) p += 16;
      if (p == end) break;
    }
    // A run of DFA steps; the reject state is absorbing, so checking it once per 16 bytes is enough.
    const unsigned char* stop = (end - p > 16) ? p + 16 : end;
    while (p != stop) s = (kRows[*p++] >> s) & 63;
    if (s == reject) break;
  }
  state_ = static_cast<std::uint32_t>(s);
  return s != reject;
}

bool is_valid_utf8(std::string_view s) noexcept {
  Utf8Validator v;
  return v.feed(s) && v.complete();
}

}  // namespace tulipa::websocket
