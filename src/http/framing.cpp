// Message framing (framing.hpp): Content-Length / Transfer-Encoding rules and the chunked decoder.
#include "tulipa/http/framing.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>

namespace tulipa::http {
namespace {

// `name` equals `lower` (lowercase letters, digits and '-') ignoring ASCII case, with one OR and one compare per 8
// bytes: OR-ing 0x20 into each byte lowercases a letter and keeps digits and '-'; the only other bytes it maps onto
// those are control bytes, which neither a token (a field name) nor a field value holds (the tokenizer checked: HTAB
// is the one control byte a value may hold, and it maps onto ')'). So it serves the names and the list items of
// values (Connection, Transfer-Encoding, Expect) alike.
inline std::uint64_t lowered8(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v | 0x2020202020202020u;
}
inline std::uint32_t lowered4(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v | 0x20202020u;
}
inline bool name_is(std::string_view name, std::string_view lower) {
  const std::size_t n = lower.size();
  if (name.size() != n) return false;
  const char* a = name.data();
  const char* b = lower.data();
  if (n >= 8) {  // whole words, the last one overlapping the one before
    for (std::size_t i = 0; i + 8 < n; i += 8)
      if (lowered8(a + i) != lowered8(b + i)) return false;
    return lowered8(a + n - 8) == lowered8(b + n - 8);
  }
  if (n >= 4) return lowered4(a) == lowered4(b) && lowered4(a + n - 4) == lowered4(b + n - 4);
  for (std::size_t i = 0; i < n; ++i)
    if ((static_cast<unsigned char>(a[i]) | 0x20) != static_cast<unsigned char>(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(item) for each comma-separated, trimmed, non-empty item of a list value.
template <class F>
void for_each_item(std::string_view value, F&& f) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view item = trim(value.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

// A Content-Length value: digits only, or a list of identical digit strings ("5, 5": RFC 9110 8.6 lets a
// recipient take it as one). -1: malformed; -2: differing members.
std::int64_t parse_length(std::string_view value) {
  std::int64_t result = -1;
  bool bad = false;
  bool differ = false;
  bool any = false;
  for_each_item(value, [&](std::string_view item) {
    if (item.size() > 18) {
      bad = true;
      return;
    }
    std::int64_t n = 0;
    for (char c : item) {
      if (c < '0' || c > '9') {
        bad = true;
        return;
      }
      n = n * 10 + (c - '0');
    }
    if (any && n != result) differ = true;
    result = n;
    any = true;
  });
  // An empty member ("5,,") is skipped by for_each_item, but an empty value is malformed.
  if (bad || !any) return -1;
  return differ ? -2 : result;
}

bool is_hex(char c, unsigned& v) {
  if (c >= '0' && c <= '9')
    v = static_cast<unsigned>(c - '0');
  else if (c >= 'a' && c <= 'f')
    v = static_cast<unsigned>(c - 'a' + 10);
  else if (c >= 'A' && c <= 'F')
    v = static_cast<unsigned>(c - 'A' + 10);
  else
    return false;
  return true;
}

bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Where chunk extensions, trailer values may hold: HTAB, SP, visible ASCII, obs-text.
bool is_field_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

}  // namespace

std::string_view describe(FramingError error) noexcept {
  switch (error) {
    case FramingError::none:
      return "no error";
    case FramingError::length_and_chunked:
      return "Content-Length together with Transfer-Encoding";
    case FramingError::conflicting_lengths:
      return "differing Content-Length values";
    case FramingError::bad_length:
      return "malformed Content-Length";
    case FramingError::not_chunked_last:
      return "Transfer-Encoding does not end in chunked";
    case FramingError::unsupported_coding:
      return "unsupported transfer coding";
    case FramingError::chunked_in_http10:
      return "Transfer-Encoding in an HTTP/1.0 request";
    case FramingError::missing_host:
      return "HTTP/1.1 request without Host";
    case FramingError::duplicate_host:
      return "more than one Host";
    case FramingError::body_too_large:
      return "request body too large";
  }
  return "unknown error";
}

int status_for(FramingError error) noexcept {
  switch (error) {
    case FramingError::body_too_large:
      return 413;
    case FramingError::unsupported_coding:
      return 501;
    default:
      return 400;
  }
}

bool has_token(std::string_view value, std::string_view token) noexcept {
  bool found = false;
  for_each_item(value, [&](std::string_view item) { found = found || iequals(item, token); });
  return found;
}

namespace {

// What both directions share: Content-Length and Transfer-Encoding, Connection. Returns false on an error.
bool common_framing(int minor_version, std::span<const Header> headers, Framing& f, int& hosts) {
  bool have_length = false;
  bool have_te = false;
  bool chunked_last = false;
  int chunked_count = 0;
  bool other_coding = false;
  bool close = false;
  bool keep_alive = false;
  bool upgrade_token = false;
  bool upgrade_header = false;
  std::int64_t length = -1;
  for (const Header& h : headers) {
    const std::string_view n = h.name;
    // The names that matter have lengths of their own: most fields are passed over on their length alone.
    switch (n.size()) {
      case 4:   // host
      case 6:   // expect
      case 7:   // upgrade
      case 10:  // connection
      case 14:  // content-length
      case 17:  // transfer-encoding
        break;
      default:
        continue;
    }
    if (name_is(n, "content-length")) {
      const std::int64_t v = parse_length(h.value);
      if (v == -1) return f.error = FramingError::bad_length, false;
      if (v == -2 || (have_length && v != length)) return f.error = FramingError::conflicting_lengths, false;
      length = v;
      have_length = true;
    } else if (name_is(n, "transfer-encoding")) {
      have_te = true;
      for_each_item(h.value, [&](std::string_view coding) {
        chunked_last = name_is(coding, "chunked");
        if (chunked_last)
          ++chunked_count;
        else
          other_coding = true;
      });
      if (trim(h.value).empty()) chunked_last = false;
    } else if (name_is(n, "connection")) {
      for_each_item(h.value, [&](std::string_view t) {
        if (name_is(t, "close"))
          close = true;
        else if (name_is(t, "keep-alive"))
          keep_alive = true;
        else if (name_is(t, "upgrade"))
          upgrade_token = true;
      });
    } else if (name_is(n, "host")) {
      ++hosts;
    } else if (name_is(n, "upgrade")) {
      upgrade_header = true;
    } else if (name_is(n, "expect")) {
      f.expect_continue = name_is(trim(h.value), "100-continue");
    }
  }
  f.keep_alive = minor_version >= 1 ? !close : (keep_alive && !close);
  f.upgrade = upgrade_token && upgrade_header;
  if (have_te) {
    if (have_length) return f.error = FramingError::length_and_chunked, false;
    if (!chunked_last || chunked_count != 1) return f.error = FramingError::not_chunked_last, false;
    if (other_coding) return f.error = FramingError::unsupported_coding, false;
    f.body = BodyKind::chunked;
  } else if (have_length) {
    f.body = length > 0 ? BodyKind::length : BodyKind::none;
    f.length = static_cast<std::uint64_t>(length);
  }
  return true;
}

}  // namespace

Framing request_framing(const RequestHead& head, std::span<const Header> headers, std::uint64_t max_body) noexcept {
  Framing f;
  int hosts = 0;
  if (!common_framing(head.minor_version, headers, f, hosts)) return f;
  if (f.body == BodyKind::chunked && head.minor_version == 0) {
    f.error = FramingError::chunked_in_http10;
    return f;
  }
  if (hosts > 1)
    f.error = FramingError::duplicate_host;
  else if (hosts == 0 && head.minor_version >= 1)
    f.error = FramingError::missing_host;
  else if (f.body == BodyKind::length && f.length > max_body)
    f.error = FramingError::body_too_large;
  return f;
}

Framing response_framing(const ResponseHead& head, std::span<const Header> headers,
                         std::string_view request_method) noexcept {
  Framing f;
  int hosts = 0;
  const bool ok = common_framing(head.minor_version, headers, f, hosts);
  if (request_method == "HEAD" || head.status == 204 || head.status == 304 || head.status < 200 ||
      (request_method == "CONNECT" && head.status < 300)) {
    f.body = BodyKind::none;
    f.error = FramingError::none;
    return f;
  }
  if (!ok) return f;
  if (f.body == BodyKind::none) {
    // No framing header: the body runs until the server closes (RFC 9112 6.3 rule 8), unless it said length 0.
    bool have_length = false;
    for (const Header& h : headers)
      if (iequals(h.name, "content-length")) have_length = true;
    if (!have_length) {
      f.body = BodyKind::until_close;
      f.keep_alive = false;
    }
  }
  return f;
}

ChunkPieces::ChunkPieces(std::string_view data) noexcept {
  const auto r = std::to_chars(size_line_, size_line_ + sizeof size_line_ - 2, data.size(), 16);
  char* end = r.ptr;
  *end++ = '\r';
  *end++ = '\n';
  pieces_[0] = std::as_bytes(std::span(size_line_, static_cast<std::size_t>(end - size_line_)));
  pieces_[1] = std::as_bytes(std::span(data.data(), data.size()));
  pieces_[2] = std::as_bytes(std::span("\r\n", 2));
}

ChunkedDecoder::Step ChunkedDecoder::next(std::string_view in) noexcept {
  using K = Step::Kind;
  std::size_t i = 0;
  const auto error = [&] {
    state_ = State::error;
    return Step{K::error, i, {}};
  };
  while (i < in.size()) {
    const char c = in[i];
    switch (state_) {
      case State::size: {
        unsigned v = 0;
        if (is_hex(c, v)) {
          if (++digits_ > 16) return error();
          remaining_ = (remaining_ << 4) | v;
          ++i;
          break;
        }
        if (digits_ == 0) return error();
        if (c == ' ' || c == '\t')
          state_ = State::size_ws;
        else if (c == ';')
          state_ = State::ext;
        else if (c == '\r')
          state_ = State::size_lf;
        else
          return error();
        ++i;
        break;
      }
      case State::size_ws:
        if (c == ';')
          state_ = State::ext;
        else if (c == '\r')
          state_ = State::size_lf;
        else if (c != ' ' && c != '\t')
          return error();
        ++i;
        break;
      case State::ext:
        if (c == '\r')
          state_ = State::size_lf;
        else if (!is_field_byte(c))
          return error();
        ++i;
        break;
      case State::size_lf:
        if (c != '\n') return error();
        ++i;
        digits_ = 0;
        state_ = remaining_ == 0 ? State::trailer_start : State::data;
        break;
      case State::data: {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
        remaining_ -= n;
        total_ += n;
        if (remaining_ == 0) state_ = State::data_cr;
        return Step{K::data, i + n, in.substr(i, n)};
      }
      case State::data_cr:
        if (c != '\r') return error();
        state_ = State::data_lf;
        ++i;
        break;
      case State::data_lf:
        if (c != '\n') return error();
        state_ = State::size;
        ++i;
        break;
      case State::trailer_start:
        if (c == '\r') {
          state_ = State::end_lf;
        } else if (is_tchar(c)) {
          state_ = State::trailer_name;
        } else {
          return error();  // obs-fold, bare LF, an invalid name byte
        }
        ++i;
        ++trailer_bytes_;
        break;
      case State::trailer_name:
        if (c == ':')
          state_ = State::trailer_value;
        else if (!is_tchar(c))
          return error();
        ++i;
        if (++trailer_bytes_ > max_trailers_) return error();
        break;
      case State::trailer_value:
        if (c == '\r')
          state_ = State::trailer_lf;
        else if (!is_field_byte(c))
          return error();
        ++i;
        if (++trailer_bytes_ > max_trailers_) return error();
        break;
      case State::trailer_lf:
        if (c != '\n') return error();
        state_ = State::trailer_start;
        ++i;
        break;
      case State::end_lf:
        if (c != '\n') return error();
        state_ = State::done;
        return Step{K::done, i + 1, {}};
      case State::done:
        return Step{K::done, i, {}};
      case State::error:
        return error();
    }
  }
  if (state_ == State::done) return Step{K::done, i, {}};
  if (state_ == State::error) return Step{K::error, i, {}};
  return Step{K::more, i, {}};
}

}  // namespace tulipa::http
