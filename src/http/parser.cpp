// The tokenizer of parser.hpp. Byte classes come from 256-entry tables; the two long scans (the request target and
// field values) run 16 bytes a step with SSE4.2 range compares where the CPU has them.
#include "tulipa/http/parser.hpp"

#include <array>
#include <atomic>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TULIPA_HTTP_SSE42 1
#endif

namespace tulipa::http {
namespace {

using Table = std::array<bool, 256>;

constexpr Table make_tchar() {
  Table t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
// Visible ASCII: what a request target may hold (RFC 9112 3.2; obs-text is not allowed there).
constexpr Table make_target() {
  Table t{};
  for (int c = 0x21; c <= 0x7e; ++c) t[c] = true;
  return t;
}
// field-vchar, SP, HTAB and obs-text (RFC 9110 5.5).
constexpr Table make_value() {
  Table t{};
  t['\t'] = true;
  for (int c = 0x20; c <= 0x7e; ++c) t[c] = true;
  for (int c = 0x80; c <= 0xff; ++c) t[c] = true;
  return t;
}
constexpr Table tchar = make_tchar();
constexpr Table target_byte = make_target();
constexpr Table value_byte = make_value();

inline bool in(const Table& t, char c) { return t[static_cast<unsigned char>(c)]; }

const char* scan_scalar(const char* p, const char* end, const Table& ok) {
  while (end - p >= 4) {
    if (!in(ok, p[0])) return p;
    if (!in(ok, p[1])) return p + 1;
    if (!in(ok, p[2])) return p + 2;
    if (!in(ok, p[3])) return p + 3;
    p += 4;
  }
  while (p < end && in(ok, *p)) ++p;
  return p;
}

#ifdef TULIPA_HTTP_SSE42
// The SIMD scans: 16 bytes a step, each byte classified with a few compares (a PSHUFB nibble lookup for tokens) and
// the first stop byte found with movemask + count-trailing-zeros. (PCMPESTRI's range mode says the same in one
// instruction, but its latency made the scan slower than these compares; 32-byte AVX2 steps were slower too on
// the short fields of a real request, and cost a vzeroupper per call.) The whole head parser is compiled twice
// (parse_head below): once for SSE4.2 with these scans inlined, once for any x86-64 with the scalar tables, and
// each parse runs one of them.
enum class Stops { target, value, token };

// tchar as a nibble-table lookup (PSHUFB): byte b is a tchar iff lo[b & 15] & hi[b >> 4] != 0, where hi gives each
// high nibble below 8 a bit of its own (bytes >= 0x80 get none) and lo collects, per low nibble, the bits of the
// high nibbles that make a tchar with it.
struct NibbleTables {
  alignas(16) char lo[16];
  alignas(16) char hi[16];
};
constexpr NibbleTables make_token_tables() {
  NibbleTables t{};
  for (int h = 0; h < 8; ++h) t.hi[h] = static_cast<char>(1 << h);
  for (int l = 0; l < 16; ++l) {
    unsigned bits = 0;
    for (int h = 0; h < 8; ++h)
      if (tchar[static_cast<std::size_t>(h * 16 + l)]) bits |= 1u << h;
    t.lo[l] = static_cast<char>(bits);
  }
  return t;
}
constexpr NibbleTables token_tables = make_token_tables();

template <Stops kind>
__attribute__((target("sse4.2"))) inline int stop_mask16(__m128i x) {
  if constexpr (kind == Stops::target) {  // stop at <= 0x20 or >= 0x7f
    const __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x20)), x);
    const __m128i high = _mm_cmpeq_epi8(_mm_max_epu8(x, _mm_set1_epi8(0x7f)), x);
    return _mm_movemask_epi8(_mm_or_si128(low, high));
  } else if constexpr (kind == Stops::token) {  // stop at anything but a tchar
    const __m128i lo = _mm_load_si128(reinterpret_cast<const __m128i*>(token_tables.lo));
    const __m128i hi = _mm_load_si128(reinterpret_cast<const __m128i*>(token_tables.hi));
    const __m128i nib = _mm_set1_epi8(0x0f);
    const __m128i a = _mm_shuffle_epi8(lo, _mm_and_si128(x, nib));
    const __m128i b = _mm_shuffle_epi8(hi, _mm_and_si128(_mm_srli_epi16(x, 4), nib));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(a, b), _mm_setzero_si128()));
  } else {  // stop at a control byte other than HTAB, or DEL
    const __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
    const __m128i tab = _mm_cmpeq_epi8(x, _mm_set1_epi8('\t'));
    const __m128i del = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f));
    return _mm_movemask_epi8(_mm_or_si128(_mm_andnot_si128(tab, ctl), del));
  }
}

// The first stop byte at or after p: 16 bytes a step while 16 remain, then the table for the tail.
template <Stops kind>
__attribute__((target("sse4.2"))) inline const char* scan_sse42(const char* p, const char* end, const Table& ok) {
  while (end - p >= 16) {
    const int m = stop_mask16<kind>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    if (m) return p + __builtin_ctz(static_cast<unsigned>(m));
    p += 16;
  }
  return scan_scalar(p, end, ok);
}

const bool cpu_simd = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
}();
std::atomic<bool> use_simd{cpu_simd};
#else
const bool cpu_simd = false;
std::atomic<bool> use_simd{false};
#endif

// The scanners a parse runs with: the tables only, or SSE4.2 (each parse function below is compiled with both).
struct ScalarScans {
  static const char* target(const char* p, const char* end) { return scan_scalar(p, end, target_byte); }
  static const char* value(const char* p, const char* end) { return scan_scalar(p, end, value_byte); }
  static const char* token(const char* p, const char* end) { return scan_scalar(p, end, tchar); }
};
#ifdef TULIPA_HTTP_SSE42
struct Sse42Scans {
  __attribute__((target("sse4.2"))) static const char* target(const char* p, const char* end) {
    return scan_sse42<Stops::target>(p, end, target_byte);
  }
  __attribute__((target("sse4.2"))) static const char* value(const char* p, const char* end) {
    return scan_sse42<Stops::value>(p, end, value_byte);
  }
  __attribute__((target("sse4.2"))) static const char* token(const char* p, const char* end) {
    return scan_sse42<Stops::token>(p, end, tchar);
  }
};
#endif

ParseResult fail(ParseError e) { return {ParseResult::Kind::error, e, 0}; }

// Nothing wrong with the bytes so far, but the head is not complete: incomplete, unless a limit is already passed.
ParseResult more(const char* start, const char* line_start, const char* end, bool in_start_line,
                 const HeadLimits& limits) {
  if (in_start_line && static_cast<std::size_t>(end - line_start) > limits.max_request_line)
    return fail(ParseError::request_line_too_long);
  if (static_cast<std::size_t>(end - start) > limits.max_head) return fail(ParseError::head_too_large);
  return {};
}

// Why a field line that does not go "name:" is wrong, or that it is not complete yet (p: where the name stopped).
[[gnu::noinline]] ParseResult bad_name(const char* start, const char* name, const char* p, const char* end,
                                       const HeadLimits& limits) {
  if (p == end) return more(start, p, end, false, limits);
  if (p == name) {
    if (*p == '\n') return fail(ParseError::bad_line_ending);
    if (*p == ' ' || *p == '\t') return fail(ParseError::obs_fold);
  }
  return fail(ParseError::bad_header_name);
}

// Why a field value does not end in CRLF, or that it is not complete yet (p: where the value scan stopped).
[[gnu::noinline]] ParseResult bad_value_end(const char* start, const char* p, const char* end,
                                            const HeadLimits& limits) {
  if (p == end) return more(start, p, end, false, limits);
  if (*p == '\n') return fail(ParseError::bad_line_ending);
  if (*p != '\r') return fail(ParseError::bad_header_value);
  if (p + 1 == end) return more(start, p, end, false, limits);
  return fail(ParseError::bad_line_ending);
}

// Field lines from `p` up to and including the empty line. `start` is where the head began (for the size limit).
// The common path per line: a token scan, the colon, at most one space, a value scan, CRLF.
template <class Scans>
inline ParseResult parse_field_lines(const char* start, const char* p, const char* end, std::span<Header> headers,
                                     std::size_t& count, const HeadLimits& limits) {
  count = 0;
  for (;;) {
    if (static_cast<std::size_t>(p - start) > limits.max_head) return fail(ParseError::head_too_large);
    if (p == end) return more(start, p, end, false, limits);
    if (*p == '\r') {
      if (p + 1 == end) return more(start, p, end, false, limits);
      if (p[1] != '\n') return fail(ParseError::bad_line_ending);
      p += 2;
      if (static_cast<std::size_t>(p - start) > limits.max_head) return fail(ParseError::head_too_large);
      return {ParseResult::Kind::complete, ParseError::none, static_cast<std::size_t>(p - start)};
    }
    const char* name = p;
    p = Scans::token(p, end);
    if (p == end || *p != ':' || p == name) [[unlikely]]
      return bad_name(start, name, p, end, limits);
    const std::string_view field_name(name, static_cast<std::size_t>(p - name));
    ++p;
    if (p < end && *p == ' ') ++p;
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    const char* value = p;
    p = Scans::value(p, end);
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') [[unlikely]]
      return bad_value_end(start, p, end, limits);
    const char* value_end = p;
    if (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) [[unlikely]] {
      while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
    }
    if (count == headers.size()) [[unlikely]]
      return fail(ParseError::too_many_headers);
    headers[count++] = {field_name, std::string_view(value, static_cast<std::size_t>(value_end - value))};
    p += 2;
  }
}

// "HTTP/1.x" at p (8 bytes): the minor version, -1 for a malformed one, -2 for a well-formed unsupported one.
int parse_version(const char* p) {
  if (std::string_view(p, 5) != "HTTP/") return -1;
  const char major = p[5], dot = p[6], minor = p[7];
  if (major < '0' || major > '9' || dot != '.' || minor < '0' || minor > '9') return -1;
  if (major != '1') return -2;
  if (minor > '1') return -2;
  return minor - '0';
}

// Leading CRLFs before a start line (RFC 9112 2.2: a server SHOULD ignore at least one).
const char* skip_empty_lines(const char* p, const char* end, bool& bad) {
  while (p < end && *p == '\r') {
    if (p + 1 == end) return p;
    if (p[1] != '\n') {
      bad = true;
      return p;
    }
    p += 2;
  }
  if (p < end && *p == '\n') bad = true;
  return p;
}

template <class Scans>
inline ParseResult request_head(std::string_view buf, RequestHead& head, std::span<Header> headers,
                                const HeadLimits& limits) {
  const char* const start = buf.data();
  const char* const end = start + buf.size();
  bool bad = false;
  const char* p = skip_empty_lines(start, end, bad);
  if (bad) return fail(ParseError::bad_line_ending);
  const char* const line = p;
  if (p == end || (p + 1 == end && *p == '\r')) return more(start, line, end, true, limits);

  const char* q = Scans::token(p, end);
  if (q == end) return more(start, line, end, true, limits);
  if (*q != ' ') return fail(ParseError::bad_method);
  if (q == p) return fail(ParseError::bad_request_line);
  head.method = std::string_view(p, static_cast<std::size_t>(q - p));
  p = q + 1;

  q = Scans::target(p, end);
  if (q == end) return more(start, line, end, true, limits);
  if (*q != ' ') return fail(ParseError::bad_target);
  if (q == p) return fail(ParseError::bad_request_line);
  head.target = std::string_view(p, static_cast<std::size_t>(q - p));
  p = q + 1;

  if (end - p < 10) {
    // Not all of "HTTP/1.1\r\n" yet: reject at once what cannot become a version.
    const std::string_view have(p, static_cast<std::size_t>(end - p));
    const std::string_view proto = "HTTP/";
    if (have.substr(0, proto.size()) != proto.substr(0, have.size())) return fail(ParseError::bad_version);
    return more(start, line, end, true, limits);
  }
  const int minor = parse_version(p);
  if (minor == -1) return fail(ParseError::bad_version);
  if (minor == -2) return fail(ParseError::unsupported_version);
  p += 8;
  if (*p == '\n') return fail(ParseError::bad_line_ending);
  if (*p != '\r') return fail(ParseError::bad_request_line);
  if (p[1] != '\n') return fail(ParseError::bad_line_ending);
  p += 2;
  if (static_cast<std::size_t>(p - line) > limits.max_request_line) return fail(ParseError::request_line_too_long);
  head.minor_version = minor;
  std::size_t count = 0;
  const ParseResult r = parse_field_lines<Scans>(start, p, end, headers, count, limits);
  head.header_count = count;
  return r;
}

template <class Scans>
inline ParseResult response_head(std::string_view buf, ResponseHead& head, std::span<Header> headers,
                                 const HeadLimits& limits) {
  const char* const start = buf.data();
  const char* const end = start + buf.size();
  const char* p = start;
  // "HTTP/1.x SSS " is 13 bytes.
  if (end - p < 13) {
    const std::string_view have(p, static_cast<std::size_t>(end - p));
    const std::string_view proto = "HTTP/";
    if (have.substr(0, proto.size()) != proto.substr(0, std::min(have.size(), proto.size())))
      return fail(ParseError::bad_status_line);
    return more(start, start, end, true, limits);
  }
  const int minor = parse_version(p);
  if (minor < 0) return fail(ParseError::bad_status_line);
  p += 8;
  if (p[0] != ' ' || p[1] < '1' || p[1] > '9' || p[2] < '0' || p[2] > '9' || p[3] < '0' || p[3] > '9')
    return fail(ParseError::bad_status_line);
  head.status = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
  p += 4;
  const char* reason = p;
  if (*p == ' ') {
    reason = ++p;
    p = Scans::value(p, end);
    if (p == end) return more(start, start, end, true, limits);
  }
  if (*p == '\n') return fail(ParseError::bad_line_ending);
  if (*p != '\r') return fail(ParseError::bad_status_line);
  if (p + 1 == end) return more(start, start, end, true, limits);
  if (p[1] != '\n') return fail(ParseError::bad_line_ending);
  head.reason = std::string_view(reason, static_cast<std::size_t>(p - reason));
  head.minor_version = minor;
  p += 2;
  if (static_cast<std::size_t>(p - start) > limits.max_request_line) return fail(ParseError::request_line_too_long);
  std::size_t count = 0;
  const ParseResult r = parse_field_lines<Scans>(start, p, end, headers, count, limits);
  head.header_count = count;
  return r;
}

// Each head parser compiled with each set of scans; a parse picks one (the SSE4.2 one when the CPU has it).
#ifdef TULIPA_HTTP_SSE42
__attribute__((target("sse4.2"), flatten)) ParseResult request_head_sse42(std::string_view buf, RequestHead& head,
                                                                          std::span<Header> headers,
                                                                          const HeadLimits& limits) {
  return request_head<Sse42Scans>(buf, head, headers, limits);
}
__attribute__((target("sse4.2"), flatten)) ParseResult response_head_sse42(std::string_view buf, ResponseHead& head,
                                                                           std::span<Header> headers,
                                                                           const HeadLimits& limits) {
  return response_head<Sse42Scans>(buf, head, headers, limits);
}
__attribute__((target("sse4.2"), flatten)) ParseResult field_lines_sse42(const char* p, const char* end,
                                                                         std::span<Header> headers, std::size_t& count,
                                                                         const HeadLimits& limits) {
  return parse_field_lines<Sse42Scans>(p, p, end, headers, count, limits);
}
#endif

}  // namespace

ParseResult parse_request(std::string_view buf, RequestHead& head, std::span<Header> headers,
                          const HeadLimits& limits) noexcept {
#ifdef TULIPA_HTTP_SSE42
  if (use_simd.load(std::memory_order_relaxed)) return request_head_sse42(buf, head, headers, limits);
#endif
  return request_head<ScalarScans>(buf, head, headers, limits);
}

ParseResult parse_response(std::string_view buf, ResponseHead& head, std::span<Header> headers,
                           const HeadLimits& limits) noexcept {
#ifdef TULIPA_HTTP_SSE42
  if (use_simd.load(std::memory_order_relaxed)) return response_head_sse42(buf, head, headers, limits);
#endif
  return response_head<ScalarScans>(buf, head, headers, limits);
}

std::string_view describe(ParseError error) noexcept {
  switch (error) {
    case ParseError::none:
      return "no error";
    case ParseError::bad_method:
      return "invalid byte in the method";
    case ParseError::bad_target:
      return "invalid byte in the request target";
    case ParseError::bad_version:
      return "malformed HTTP version";
    case ParseError::unsupported_version:
      return "unsupported HTTP version";
    case ParseError::bad_request_line:
      return "malformed request line";
    case ParseError::bad_line_ending:
      return "bare CR or LF where CRLF is required";
    case ParseError::bad_header_name:
      return "empty header name, invalid byte or whitespace before the colon";
    case ParseError::bad_header_value:
      return "control character in a header value";
    case ParseError::obs_fold:
      return "obsolete line folding in a header";
    case ParseError::request_line_too_long:
      return "request line too long";
    case ParseError::head_too_large:
      return "header block too large";
    case ParseError::too_many_headers:
      return "too many header fields";
    case ParseError::bad_status_line:
      return "malformed status line";
  }
  return "unknown error";
}

int status_for(ParseError error) noexcept {
  switch (error) {
    case ParseError::request_line_too_long:
      return 414;
    case ParseError::head_too_large:
    case ParseError::too_many_headers:
      return 431;
    case ParseError::unsupported_version:
      return 505;
    default:
      return 400;
  }
}

ParseResult parse_fields(std::string_view buf, std::span<Header> headers, std::size_t& count,
                         std::size_t max_bytes) noexcept {
  HeadLimits limits;
  limits.max_head = max_bytes;
  const char* const p = buf.data();
#ifdef TULIPA_HTTP_SSE42
  if (use_simd.load(std::memory_order_relaxed)) return field_lines_sse42(p, p + buf.size(), headers, count, limits);
#endif
  return parse_field_lines<ScalarScans>(p, p, p + buf.size(), headers, count, limits);
}

bool simd_enabled() noexcept { return use_simd.load(std::memory_order_relaxed); }

void force_scalar(bool on) noexcept { use_simd.store(!on && cpu_simd, std::memory_order_relaxed); }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x |= 0x20;
    if (y >= 'A' && y <= 'Z') y |= 0x20;
    if (x != y) return false;
  }
  return true;
}

}  // namespace tulipa::http
