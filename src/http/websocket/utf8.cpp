// The shift DFA of websocket_utf8.hpp. States (index; the state value is 6 * index):
//   0 accept (between code points)  1 reject  2 one continuation byte left  3 two left  4 three left
//   5 after E0 (next A0..BF)  6 after ED (next 80..9F: no surrogates)  7 after F0 (next 90..BF: no overlong)
//   8 after F4 (next 80..8F: nothing above U+10FFFF)
// Row b holds, in its 6-bit field number s, the value of the state that byte b leads to from state s.
#include "tulipa/http/websocket_utf8.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TULIPA_UTF8_AVX2 1

// Keiser and Lemire's lookup algorithm ("Validating UTF-8 in less than one instruction per byte", 2021; simdjson's
// validator), 32 bytes a step with AVX2: three table lookups classify each pair (previous byte, this byte) into
// error bits, and a check of the bytes two and three back catches missing or surplus continuation bytes. Whole text
// only: [p, p + n) must start on a code point boundary and is invalid if it ends inside a code point.
namespace lookup {

constexpr std::uint8_t kTooShort = 1 << 0, kTooLong = 1 << 1, kOverlong3 = 1 << 2, kTooLarge = 1 << 3,
                       kSurrogate = 1 << 4, kOverlong2 = 1 << 5, kTooLarge1000 = 1 << 6, kOverlong4 = 1 << 6,
                       kTwoConts = 1 << 7, kCarry = kTooShort | kTooLong | kTwoConts;

// A 16-entry table, twice (vpshufb looks up within each 128-bit lane).
__attribute__((target("avx2"))) inline __m256i table(const std::uint8_t (&t)[16]) {
  __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t));
  return _mm256_broadcastsi128_si256(v);
}

constexpr std::uint8_t kByte1High[16] = {
    kTooLong,
    kTooLong,
    kTooLong,
    kTooLong,
    kTooLong,
    kTooLong,
    kTooLong,
    kTooLong,  // 0___: ASCII first
    kTwoConts,
    kTwoConts,
    kTwoConts,
    kTwoConts,                                           // 10__: continuation first
    kTooShort | kOverlong2,                              // 1100
    kTooShort,                                           // 1101
    kTooShort | kOverlong3 | kSurrogate,                 // 1110
    kTooShort | kTooLarge | kTooLarge1000 | kOverlong4,  // 1111
};
constexpr std::uint8_t kByte1Low[16] = {
    kCarry | kOverlong3 | kOverlong2 | kOverlong4,  // ____0000
    kCarry | kOverlong2,                            // ____0001
    kCarry,
    kCarry,
    kCarry | kTooLarge,  // ____0100
    kCarry | kTooLarge | kTooLarge1000,
    kCarry | kTooLarge | kTooLarge1000,
    kCarry | kTooLarge | kTooLarge1000,
    kCarry | kTooLarge | kTooLarge1000,
    kCarry | kTooLarge | kTooLarge1000,
    kCarry | kTooLarge | kTooLarge1000,
    kCarry | kTooLarge | kTooLarge1000,
    kCarry | kTooLarge | kTooLarge1000,
    kCarry | kTooLarge | kTooLarge1000 | kSurrogate,  // ____1101
    kCarry | kTooLarge | kTooLarge1000,
    kCarry | kTooLarge | kTooLarge1000,
};
constexpr std::uint8_t kByte2High[16] = {
    kTooShort,
    kTooShort,
    kTooShort,
    kTooShort,
    kTooShort,
    kTooShort,
    kTooShort,
    kTooShort,                                                                    // 0___: ASCII second
    kTooLong | kOverlong2 | kTwoConts | kOverlong3 | kTooLarge1000 | kOverlong4,  // 1000
    kTooLong | kOverlong2 | kTwoConts | kOverlong3 | kTooLarge,                   // 1001
    kTooLong | kOverlong2 | kTwoConts | kSurrogate | kTooLarge,                   // 1010
    kTooLong | kOverlong2 | kTwoConts | kSurrogate | kTooLarge,                   // 1011
    kTooShort,
    kTooShort,
    kTooShort,
    kTooShort,  // 11__: lead second
};

// The 32 bytes that end N bytes before the end of `input` (taking the last N of `prev`).
template <int N>
__attribute__((target("avx2"))) inline __m256i back(__m256i input, __m256i prev) {
  return _mm256_alignr_epi8(input, _mm256_permute2x128_si256(prev, input, 0x21), 16 - N);
}

struct Blocks {
  __m256i error, prev, prev_incomplete;
};

__attribute__((target("avx2"))) inline void step(Blocks& b, __m256i input, __m256i t1h, __m256i t1l, __m256i t2h) {
  if (_mm256_movemask_epi8(input) == 0) {
    b.error = _mm256_or_si256(b.error, b.prev_incomplete);  // ASCII: the last block must have ended a code point
  } else {
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    __m256i prev1 = back<1>(input, b.prev);
    __m256i sc = _mm256_and_si256(
        _mm256_and_si256(_mm256_shuffle_epi8(t1h, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), nibble)),
                         _mm256_shuffle_epi8(t1l, _mm256_and_si256(prev1, nibble))),
        _mm256_shuffle_epi8(t2h, _mm256_and_si256(_mm256_srli_epi16(input, 4), nibble)));
    // A byte two back at E0+ or three back at F0+ needs this byte to be a continuation: bit 7 says so.
    __m256i third = _mm256_subs_epu8(back<2>(input, b.prev), _mm256_set1_epi8(static_cast<char>(0xE0 - 0x80)));
    __m256i fourth = _mm256_subs_epu8(back<3>(input, b.prev), _mm256_set1_epi8(static_cast<char>(0xF0 - 0x80)));
    __m256i must23 = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8(static_cast<char>(0x80)));
    b.error = _mm256_or_si256(b.error, _mm256_xor_si256(must23, sc));
    // A lead byte in the last three positions whose code point cannot fit: the next block must continue it.
    const __m256i max_last =
        _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                         -1, -1, -1, -1, -1, static_cast<char>(0xEF), static_cast<char>(0xDF), static_cast<char>(0xBF));
    b.prev_incomplete = _mm256_subs_epu8(input, max_last);
  }
  b.prev = input;
}

__attribute__((target("avx2"))) bool valid(const unsigned char* p, std::size_t n) noexcept {
  const __m256i t1h = table(kByte1High), t1l = table(kByte1Low), t2h = table(kByte2High);
  Blocks b{_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) step(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)), t1h, t1l, t2h);
  if (i < n) {
    alignas(32) unsigned char last[32] = {};  // zero padding is ASCII: an unfinished code point shows as too short
    std::memcpy(last, p + i, n - i);
    step(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(last)), t1h, t1l, t2h);
  }
  __m256i error = _mm256_or_si256(b.error, b.prev_incomplete);
  return _mm256_testz_si256(error, error) != 0;
}

bool has_avx2() noexcept {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return yes;
}

}  // namespace lookup

// Where the last code point of [p, end) starts if it is cut short by `end`; `end` otherwise (and when the tail is
// malformed, which the whole-text check then finds).
const unsigned char* last_boundary(const unsigned char* p, const unsigned char* end) noexcept {
  const unsigned char* q = end;
  for (int k = 0; k < 4 && q != p; ++k) {
    unsigned b = *--q;
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    std::ptrdiff_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    return end - q < need ? q : end;
  }
  return end;
}
#endif

}  // namespace

bool Utf8Validator::feed(const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t s = state_;
  const unsigned char* end = p + n;
#ifdef TULIPA_UTF8_AVX2
  // Between code points and with enough bytes to pay for it: the whole code points go through the vector check,
  // the cut-short one at the end (if any) through the DFA, which carries it into the next call.
  if (s == 0 && n >= 64 && lookup::has_avx2()) {
    const unsigned char* cut = last_boundary(p, end);
    if (!lookup::valid(p, static_cast<std::size_t>(cut - p))) {
      state_ = reject;
      return false;
    }
    p = cut;
  }
#endif
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
