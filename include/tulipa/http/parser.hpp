// The HTTP/1.1 tokenizer: request and response heads parsed in place, picohttpparser-style (stateless, no
// allocation, every result a view into the caller's buffer). The strict framing on top of it (Content-Length vs
// Transfer-Encoding, chunked bodies, limits) is in framing.hpp.
//
// Why our own and not Debian's libhttp-parser (2.9.4, the only packaged C parser): it is unmaintained upstream
// (nodejs/http-parser was archived in favour of llhttp, which Debian does not package as a library), and it still
// accepts request-smuggling vectors that RFC 9112 says to reject: whitespace between a field name and its colon
// (`Transfer-Encoding : chunked`, which a front proxy may ignore and we would honour), a bare CR inside a field
// value, and a bare LF ending chunk-size lines. It also keeps state per connection (a parser object of its own),
// where a stateless tokenizer re-run over the buffered bytes costs nothing in memory for an idle connection, and it
// parses a byte at a time, where ours scans 16 bytes per step with SSE4.2 (bench/http_parser_bench.cpp measures
// both on the same requests, in the same binary).
//
// What the tokenizer rejects (ParseResult::error, with the status to answer): a method that is not a token; a
// target with bytes outside visible ASCII; a version other than HTTP/1.0 or HTTP/1.1 (505 for HTTP/2+ or 0.9);
// more than one space between the parts of the request line; bare CR or bare LF where CRLF is required; a field
// name that is empty or holds a non-token byte (so whitespace before the colon is a 400); obs-fold (a line that
// starts with SP or HTAB); control bytes other than HTAB in a value. Over the limits: a request line longer than
// `max_request_line` (414), a head longer than `max_head` or with more fields than fit in `headers` (431).
//
// SIMD: the scans of the method, target, field names and field values classify 16 bytes a step with SSE4.2-era
// compares (a PSHUFB nibble lookup for tokens); the head parser is compiled once with those scans inlined and once
// with the scalar tables, and the SSE4.2 one runs when the CPU has it, chosen once at run time (the library is built
// for baseline x86-64). Both give the same answers (the fuzzer and tests/http/http_parser_test.cpp compare them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tulipa::http {

// One header field: views into the parsed buffer. The value has no leading or trailing whitespace.
struct Header {
  std::string_view name{};
  std::string_view value{};
};

struct HeadLimits {
  std::size_t max_request_line = 8 * 1024;  // 414 above this (the start line of a response too)
  std::size_t max_head = 64 * 1024;         // 431 above this: the start line and all fields, up to the empty line
};

enum class ParseError : std::uint8_t {
  none,
  bad_method,
  bad_target,
  bad_version,
  unsupported_version,  // HTTP/2.0, 3.0, 0.9: answered with 505
  bad_request_line,     // wrong spacing, missing parts
  bad_line_ending,      // a bare CR or a bare LF
  bad_header_name,      // empty, non-token bytes, whitespace before the colon
  bad_header_value,     // control bytes
  obs_fold,             // a field line that starts with SP or HTAB
  request_line_too_long,
  head_too_large,
  too_many_headers,
  bad_status_line,  // responses only
};

// A short text for a log line ("whitespace or invalid byte in a header name").
std::string_view describe(ParseError error) noexcept;
// The status a server answers the error with: 400, 414, 431 or 505.
int status_for(ParseError error) noexcept;

struct RequestHead {
  std::string_view method{};
  std::string_view target{};
  int minor_version = 1;         // HTTP/1.<minor_version>: 0 or 1
  std::size_t header_count = 0;  // the first header_count entries of the span given to parse_request
};

struct ResponseHead {
  int minor_version = 1;
  int status = 0;
  std::string_view reason{};
  std::size_t header_count = 0;
};

// The outcome of one parse. complete: `consumed` bytes (the whole head, up to and including the empty line) were
// parsed into the head. incomplete: the buffer ends inside the head and no limit is exceeded yet: call again with
// more bytes (from the start; the tokenizer keeps no state). error: `error` says what (status_for gives the status).
struct ParseResult {
  enum class Kind : std::uint8_t { complete, incomplete, error };
  Kind kind = Kind::incomplete;
  ParseError error = ParseError::none;
  std::size_t consumed = 0;

  bool complete() const noexcept { return kind == Kind::complete; }
  bool incomplete() const noexcept { return kind == Kind::incomplete; }
  bool failed() const noexcept { return kind == Kind::error; }
};

// Parses the request head at the start of `buf`; the fields go to `headers` (too many: too_many_headers). Leading
// empty lines before the request line are skipped, as RFC 9112 section 2.2 allows (counted in `consumed`).
ParseResult parse_request(std::string_view buf, RequestHead& head, std::span<Header> headers,
                          const HeadLimits& limits = {}) noexcept;
// The same for a response head (the client side).
ParseResult parse_response(std::string_view buf, ResponseHead& head, std::span<Header> headers,
                           const HeadLimits& limits = {}) noexcept;
// Parses field lines (trailers after a chunked body) up to and including the empty line; `count` gets their number.
ParseResult parse_fields(std::string_view buf, std::span<Header> headers, std::size_t& count,
                         std::size_t max_bytes) noexcept;

// Which scanner runs: true when SSE4.2 was found at start-up. force_scalar (tests, benchmarks) switches every later
// parse on this process to the scalar loop, or back to the detected choice.
bool simd_enabled() noexcept;
void force_scalar(bool on) noexcept;

// ASCII case-insensitive comparison, for header names and tokens.
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace tulipa::http
