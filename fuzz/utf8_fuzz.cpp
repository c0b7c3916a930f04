// The incremental UTF-8 validator (tulipa/http/websocket_utf8.hpp) against a naive reference (RFC 3629's table,
// one code point at a time), with the input fed in chunks whose sizes come from the input: the verdict must not
// depend on the chunking, must equal the reference's, and once the validator says "failed" no extension of the
// input may be valid (fail fast is only allowed where the reference also rejects every completion).
//
// Input: [chunk size seed] then the text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "tulipa/http/websocket_utf8.hpp"

namespace {

// -1: invalid; else the number of bytes of an incomplete code point left at the end (0: complete).
int reference(const std::uint8_t* p, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    std::uint8_t b = p[i];
    int len;
    std::uint32_t lo = 0x80, hi = 0xBF;
    if (b < 0x80)
      len = 1;
    else if (b >= 0xC2 && b <= 0xDF)
      len = 2;
    else if (b >= 0xE0 && b <= 0xEF)
      len = 3, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    else if (b >= 0xF0 && b <= 0xF4)
      len = 4, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    else
      return -1;
    for (int k = 1; k < len; ++k) {
      if (i + k >= n) return static_cast<int>(i + len - n);  // cut short: could still complete
      std::uint8_t c = p[i + k];
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return -1;
    }
    i += len;
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // Small chunks exercise the DFA across calls; large ones (64 bytes and more) the vector path.
  std::size_t step = data[0] < 128 ? 1 + data[0] % 19 : 1 + (data[0] - 128) * 8u;
  const std::uint8_t* p = data + 1;
  std::size_t n = size - 1;
  tulipa::websocket::Utf8Validator v;
  bool ok = true;
  for (std::size_t at = 0; at < n && ok; at += step) {
    std::size_t k = at + step > n ? n - at : step;
    ok = v.feed(p + at, k);
    // Fail fast, but never early: when it fails, the prefix fed so far is invalid for the reference too.
    if (!ok) FUZZ_CHECK(reference(p, at + k) == -1);
  }
  int ref = reference(p, n);
  FUZZ_CHECK(ok == (ref != -1));
  if (ok) FUZZ_CHECK(v.complete() == (ref == 0));
  FUZZ_CHECK(tulipa::websocket::is_valid_utf8(std::string_view(reinterpret_cast<const char*>(p), n)) == (ref == 0));
  return 0;
}
