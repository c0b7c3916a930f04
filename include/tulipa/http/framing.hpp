// The strict framing layer over the tokenizer (parser.hpp): how long a message body is, and the chunked decoder.
// Shared by the server, the client and the fuzzer; sans-I/O.
//
// Request framing (RFC 9112 section 6, read strictly, because a proxy in front of us may read it leniently and a
// disagreement about where a request ends is request smuggling). Answered with 400 and a closed connection:
// Content-Length together with Transfer-Encoding; Content-Length values that differ (duplicates or a list of
// equal values are accepted as one); a Content-Length that is not all digits or overflows; a Transfer-Encoding
// whose last coding is not `chunked`, or `chunked` twice; Transfer-Encoding in an HTTP/1.0 request; HTTP/1.1
// without a Host, or with two. A body larger than `max_body` is a 413 (checked on the declared length at once,
// and on a chunked body as its chunks arrive). A coding before `chunked` (`gzip, chunked`) is a 501: we decode none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "tulipa/http/parser.hpp"

namespace tulipa::http {

enum class BodyKind : std::uint8_t {
  none,         // no body (no framing header in a request; 1xx/204/304 and HEAD answers)
  length,       // Content-Length bytes
  chunked,      // Transfer-Encoding: chunked
  until_close,  // a response without framing: its body ends with the connection (client side only)
};

enum class FramingError : std::uint8_t {
  none,
  length_and_chunked,
  conflicting_lengths,
  bad_length,
  not_chunked_last,    // a Transfer-Encoding whose last coding is not chunked
  unsupported_coding,  // 501
  chunked_in_http10,
  missing_host,
  duplicate_host,
  body_too_large,  // 413
};

std::string_view describe(FramingError error) noexcept;
int status_for(FramingError error) noexcept;  // 400, 413 or 501

// What the head of a message says about its body and its connection.
struct Framing {
  BodyKind body = BodyKind::none;
  std::uint64_t length = 0;  // for BodyKind::length
  FramingError error = FramingError::none;
  bool keep_alive = true;        // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive"
  bool expect_continue = false;  // "Expect: 100-continue"
  bool upgrade = false;          // "Connection: upgrade" with an "Upgrade" field
};

Framing request_framing(const RequestHead& head, std::span<const Header> headers, std::uint64_t max_body) noexcept;
// A response's framing; `request_method` is the method of the request it answers (HEAD and CONNECT change it).
Framing response_framing(const ResponseHead& head, std::span<const Header> headers,
                         std::string_view request_method) noexcept;

// Whether the comma-separated list `value` holds `token` (case-insensitive), e.g. "keep-alive, Upgrade".
bool has_token(std::string_view value, std::string_view token) noexcept;

// One chunk of a chunked body as the three pieces a writer hands to writelines(): the size line, the data (borrowed:
// `data` must outlive the pieces' use) and the CRLF after it. For the server's streamed responses and the client's
// streamed requests.
class ChunkPieces {
 public:
  explicit ChunkPieces(std::string_view data) noexcept;
  ChunkPieces(const ChunkPieces&) = delete;  // the pieces point into this object
  ChunkPieces& operator=(const ChunkPieces&) = delete;
  std::span<const std::span<const std::byte>> pieces() const noexcept { return pieces_; }

 private:
  char size_line_[20];  // 16 hex digits at most, CRLF
  std::span<const std::byte> pieces_[3];
};

// Decodes a chunked body incrementally from whatever pieces arrive, with no buffer of its own: each call to next()
// looks at the bytes not consumed yet and returns either a piece of body data (a view into `in`), a request for
// more input, the end of the body (after the trailer section), or an error. Strict: a chunk size of more than 16
// hex digits (overflow), a missing size, a bare CR or LF in a size line or after chunk data, chunk data not
// followed by CRLF, and malformed trailer fields are errors. Trailers are checked and dropped.
class ChunkedDecoder {
 public:
  struct Step {
    enum class Kind : std::uint8_t { data, more, done, error };
    Kind kind;
    std::size_t consumed;   // bytes of `in` used by this step (including the data's)
    std::string_view data;  // Kind::data: the body bytes (a view into `in`)
  };
  explicit ChunkedDecoder(std::size_t max_trailer_bytes = 8 * 1024) noexcept : max_trailers_(max_trailer_bytes) {}
  Step next(std::string_view in) noexcept;
  bool done() const noexcept { return state_ == State::done; }
  // Body bytes decoded so far (for the body size limit).
  std::uint64_t body_bytes() const noexcept { return total_; }

 private:
  enum class State : std::uint8_t {
    size,
    size_ws,
    ext,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer_start,
    trailer_name,
    trailer_value,
    trailer_lf,
    end_lf,
    done,
    error
  };
  State state_ = State::size;
  std::uint8_t digits_ = 0;
  std::uint64_t remaining_ = 0;  // the chunk size while reading the size line, then the bytes left of it
  std::uint64_t total_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::size_t max_trailers_;
};

}  // namespace tulipa::http
