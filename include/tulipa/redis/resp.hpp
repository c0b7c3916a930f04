// RESP, the Redis serialization protocol: versions 2 and 3, parsed and written by tulipa itself.
//
// Why not Debian's hiredis: Debian 12 ships hiredis 0.14.1, whose reader knows only RESP2. It has no RESP3 types
// (push frames, maps, sets, doubles, booleans, big numbers, verbatim strings, bulk errors, attributes), and a
// client that speaks RESP3 needs exactly those: push frames are how pub/sub messages arrive next to command
// replies on one connection. Its reader also builds a tree of heap objects for every reply, where most replies
// are consumed at once (a GET's bulk string goes straight into the caller's std::string). So the parser here is
// small and sans-I/O, in the picohttpparser style: bytes in, frame boundaries out, values read in place.
//
// Two steps, so that a reply is parsed where it lies in the read buffer (zero copy):
//   RespScanner  finds where the next complete reply ("frame") ends, validating it on the way; incremental: a
//                large reply arriving in many pieces is scanned once, not from its start on every piece.
//   RespReader   walks a frame the scanner accepted, one header at a time, returning views into the buffer.
// read_reply() builds an owned Reply tree from a frame, for the generic command(); the typed helpers of the
// client read the headers they expect directly (redis/detail/decode.hpp).
//
// Supported: every RESP2 and RESP3 type Redis sends (+ - : $ * _ # , ( ! = % ~ | >), RESP2's null bulk string
// and null array. Not supported: RESP3's streamed strings and aggregates ($? *? ...), which Redis never sends:
// they are a ProtocolError. Limits (ProtocolError beyond): bulk strings of 512 MiB (the server's own
// proto-max-bulk-len default), 2^30 elements per aggregate, 32 levels of nesting, header lines of 64 KiB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tulipa/redis/errors.hpp"

namespace tulipa::redis {

enum class Type : std::uint8_t {
  simple_string,  // +
  error,          // -  (and RESP3's bulk error !)
  integer,        // :
  bulk_string,    // $
  array,          // *
  null,           // _  (and RESP2's $-1 and *-1)
  boolean,        // #
  double_,        // ,
  big_number,     // (  (kept as its decimal text)
  verbatim,       // =  (str() is the text; format() its three-letter format, "txt" or "mkd")
  map,            // %  (elements() are key, value, key, value, ...)
  set,            // ~
  push,           // >  (out-of-band data: pub/sub messages, invalidations)
};

std::string_view type_name(Type t) noexcept;

// An owned reply (what the generic client.command() returns). Aggregates hold their elements in order; a map
// holds them as key, value, key, value. Errors nested in an aggregate (EXEC's) are kept as values of type error;
// a top-level error reply is thrown as ServerError instead of being returned.
class Reply {
 public:
  Reply() noexcept = default;  // null
  static Reply make_string(Type t, std::string_view s);
  static Reply make_integer(long long v) noexcept;
  static Reply make_double(double v) noexcept;
  static Reply make_boolean(bool v) noexcept;

  Type type() const noexcept { return type_; }
  bool is_null() const noexcept { return type_ == Type::null; }
  bool is_error() const noexcept { return type_ == Type::error; }
  bool is_string() const noexcept {
    return type_ == Type::simple_string || type_ == Type::bulk_string || type_ == Type::verbatim;
  }
  bool is_aggregate() const noexcept {
    return type_ == Type::array || type_ == Type::map || type_ == Type::set || type_ == Type::push;
  }

  // The text of strings, errors, big numbers and verbatim strings (ReplyTypeError for other types).
  std::string_view str() const;
  // Verbatim strings: the format ("txt", "mkd").
  std::string_view format() const;
  long long integer() const;  // integer
  double number() const;      // double (also accepts an integer)
  bool boolean() const;       // boolean
  // Arrays, sets, pushes; maps as key, value pairs flattened (ReplyTypeError for scalars).
  const std::vector<Reply>& elements() const;
  std::size_t size() const noexcept { return elements_.size(); }
  const Reply& operator[](std::size_t i) const { return elements().at(i); }
  // A map's value for a string key, or null when absent (ReplyTypeError if this is not a map).
  const Reply* find(std::string_view key) const;
  // RESP3 attributes that came before this reply (a map), or null.
  const Reply* attributes() const noexcept { return attributes_.get(); }

  // Convenience conversions: nullopt for null, the text for strings (ServerError for an error value).
  std::optional<std::string> as_optional_string() const;

  // For read_reply.
  std::vector<Reply>& mutable_elements() noexcept { return elements_; }
  void set_type(Type t) noexcept { type_ = t; }
  void set_attributes(Reply attributes);

  // Redis-cli-like one-line rendering (tests, diagnostics).
  std::string to_string() const;

 private:
  Type type_ = Type::null;
  bool boolean_ = false;
  union {
    long long integer_;
    double double_ = 0;
  };
  std::string str_;  // strings; verbatim: "fmt:text"
  std::vector<Reply> elements_;
  std::shared_ptr<Reply> attributes_;  // rare: shared keeps Reply copyable cheaply
};

// --- the parser

// One header of a frame, as RespReader returns it. For strings, errors, big numbers and verbatim strings `text`
// views the payload in the buffer (verbatim: including its "fmt:" prefix); for aggregates `count` is the number
// of elements that follow (a map's and an attribute's: pairs, so twice that many values follow).
struct RespHeader {
  char marker = 0;  // the RESP type byte: + - : $ * _ # , ( ! = % ~ | >
  bool null = false;
  long long count = 0;  // aggregates: elements (pairs for % and |); integers: the value
  double number = 0;    // ','
  std::string_view text{};
  Type type() const noexcept;
  bool is_aggregate() const noexcept {
    return marker == '*' || marker == '%' || marker == '~' || marker == '|' || marker == '>';
  }
  // How many values follow this header inside its aggregate.
  long long values() const noexcept { return (marker == '%' || marker == '|') ? 2 * count : count; }
};

// Finds complete frames (one top-level reply each, attributes included). Keeps its progress between calls so
// that a frame arriving in pieces is scanned once: call scan() with the same frame start and more bytes.
// 136 bytes of state.
class RespScanner {
 public:
  static constexpr std::size_t max_depth = 32;
  static constexpr std::size_t max_bulk = 512u << 20;
  static constexpr long long max_elements = 1 << 30;
  static constexpr std::size_t max_line = 64 * 1024;

  // `data` starts at the frame's first byte (the same start as the previous call while a frame is incomplete).
  // Returns the frame's length once it is complete (and resets for the next frame), 0 while more bytes are
  // needed. Throws ProtocolError for bytes that are not RESP or exceed a limit.
  std::size_t scan(const char* data, std::size_t size);
  // Forget a partial frame (a new connection).
  void reset() noexcept {
    pos_ = 0;
    depth_ = 0;
  }
  // Bytes of the current partial frame already accepted; a hint for how much more will come (a bulk's length).
  std::size_t progress() const noexcept { return pos_; }
  std::size_t wanted() const noexcept { return wanted_; }

 private:
  std::size_t pos_ = 0;     // bytes of the frame scanned so far
  std::size_t wanted_ = 0;  // the frame needs at least this many bytes (from its start) to go on
  std::uint32_t depth_ = 0;
  std::uint32_t left_[max_depth];  // values still to come at each open level
};

// Reads one header at `p` (not beyond `end`). Returns the position after it (after the payload for bulk types),
// or null when it is incomplete. Throws ProtocolError when malformed.
const char* parse_header(const char* p, const char* end, RespHeader& h);

// Walks a complete frame (as RespScanner delimited it) header by header: zero copy, the views last as long as the
// buffer. Reading past the frame's end throws ProtocolError.
class RespReader {
 public:
  RespReader(const char* data, std::size_t size) noexcept : p_(data), end_(data + size) {}
  RespHeader next();
  // The next header that is not an attribute: attributes are read and dropped.
  RespHeader next_value();
  // Skips the values of an aggregate whose header was just read (recursively).
  void skip_values(const RespHeader& h);
  bool at_end() const noexcept { return p_ == end_; }

 private:
  const char* p_;
  const char* end_;
};

// An owned Reply from the next value of `r` (attributes kept in Reply::attributes()).
Reply read_reply(RespReader& r);
// The same, starting from a header already read.
Reply read_reply(RespReader& r, const RespHeader& h);

// --- the serializer

// One argument of a command, borrowed: strings are viewed, numbers formatted when written. 16 bytes.
// Implicit from each argument type on purpose, so that a command reads as a list: {"SET", key, 42}.
class Arg {
 public:
  Arg() noexcept : p_(""), kind_(Kind::bytes) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  Arg(std::string_view s) noexcept : p_(s.data()), n_(static_cast<std::uint32_t>(s.size())), kind_(Kind::bytes) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  Arg(const std::string& s) noexcept : Arg(std::string_view(s)) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  Arg(const char* s) noexcept : Arg(std::string_view(s)) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  Arg(std::span<const std::byte> b) noexcept
      : p_(reinterpret_cast<const char*>(b.data())), n_(static_cast<std::uint32_t>(b.size())), kind_(Kind::bytes) {}
  template <class I>
    requires(std::is_integral_v<I> && !std::is_same_v<I, bool> && !std::is_same_v<I, char>)
  // NOLINTNEXTLINE(google-explicit-constructor)
  Arg(I v) noexcept : i_(static_cast<long long>(v)), kind_(Kind::integer) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  Arg(double v) noexcept : d_(v), kind_(Kind::floating) {}

  // Appends "$<len>\r\n<bytes>\r\n".
  void append_to(std::string& out) const;
  // The argument as text (numbers formatted into `buf`, which must hold 32 bytes).
  std::string_view text(char* buf) const noexcept;

 private:
  enum class Kind : std::uint8_t { bytes, integer, floating };
  union {
    const char* p_;
    long long i_;
    double d_;
  };
  std::uint32_t n_ = 0;
  Kind kind_;
};

// Appends one command (a RESP array of bulk strings) to `out`. Strings longer than 4 GiB cannot be sent.
void append_command(std::string& out, std::span<const Arg> args);

}  // namespace tulipa::redis
