// RESP2/RESP3 parsing and writing (see tulipa/redis/resp.hpp for why tulipa has its own).
#include "tulipa/redis/resp.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

namespace tulipa::redis {

namespace {

[[noreturn]] void bad(const char* what) { throw ProtocolError(std::string("redis: malformed reply: ") + what); }

// Strict decimal: optional '-', 1 to 19 digits, no overflow (Redis writes lengths and integers this way).
long long parse_int(std::string_view s) {
  long long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || s[0] == '+') bad("not an integer");
  return v;
}

long long parse_length(std::string_view s, long long max) {
  if (!s.empty() && s[0] == '?') bad("streamed strings and aggregates are not supported");
  long long n = parse_int(s);
  if (n < -1 || n > max) bad("length out of range");
  return n;
}

}  // namespace

std::string_view type_name(Type t) noexcept {
  switch (t) {
    case Type::simple_string:
      return "simple string";
    case Type::error:
      return "error";
    case Type::integer:
      return "integer";
    case Type::bulk_string:
      return "bulk string";
    case Type::array:
      return "array";
    case Type::null:
      return "null";
    case Type::boolean:
      return "boolean";
    case Type::double_:
      return "double";
    case Type::big_number:
      return "big number";
    case Type::verbatim:
      return "verbatim string";
    case Type::map:
      return "map";
    case Type::set:
      return "set";
    case Type::push:
      return "push";
  }
  return "?";
}

Type RespHeader::type() const noexcept {
  if (null) return Type::null;
  switch (marker) {
    case '+':
      return Type::simple_string;
    case '-':
    case '!':
      return Type::error;
    case ':':
      return Type::integer;
    case '$':
      return Type::bulk_string;
    case '*':
      return Type::array;
    case '#':
      return Type::boolean;
    case ',':
      return Type::double_;
    case '(':
      return Type::big_number;
    case '=':
      return Type::verbatim;
    case '%':
      return Type::map;
    case '~':
      return Type::set;
    case '>':
      return Type::push;
    default:
      return Type::null;
  }
}

const char* parse_header(const char* p, const char* end, RespHeader& h) {
  if (p >= end) return nullptr;
  h = RespHeader{};
  h.marker = *p;
  std::size_t avail = static_cast<std::size_t>(end - p - 1);
  std::size_t look = avail < RespScanner::max_line + 1 ? avail : RespScanner::max_line + 1;
  auto* cr = static_cast<const char*>(std::memchr(p + 1, '\r', look));
  if (!cr) {
    if (avail > RespScanner::max_line) bad("header line too long");
    return nullptr;
  }
  if (cr + 1 >= end) return nullptr;
  if (cr[1] != '\n') bad("CR without LF");
  std::string_view line(p + 1, static_cast<std::size_t>(cr - p - 1));
  const char* next = cr + 2;
  switch (h.marker) {
    case '+':
    case '-':
      h.text = line;
      return next;
    case '(': {
      std::string_view digits = line.substr(!line.empty() && line[0] == '-' ? 1 : 0);
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) bad("big number");
      h.text = line;
      return next;
    }
    case ':':
      h.count = parse_int(line);
      return next;
    case '$':
    case '!':
    case '=': {
      long long n = parse_length(line, static_cast<long long>(RespScanner::max_bulk));
      if (n == -1) {
        if (h.marker != '$') bad("negative length");
        h.null = true;
        return next;
      }
      auto len = static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(end - next) < len + 2) return nullptr;
      if (next[len] != '\r' || next[len + 1] != '\n') bad("bulk string not followed by CRLF");
      h.text = std::string_view(next, len);
      if (h.marker == '=' && (len < 4 || h.text[3] != ':')) bad("verbatim string without format");
      return next + len + 2;
    }
    case '*':
    case '%':
    case '~':
    case '|':
    case '>': {
      long long n = parse_length(line, RespScanner::max_elements);
      if (n == -1) {
        if (h.marker != '*') bad("negative count");
        h.null = true;
      }
      h.count = n;
      return next;
    }
    case '_':
      if (!line.empty()) bad("null with payload");
      h.null = true;
      return next;
    case '#':
      if (line != "t" && line != "f") bad("boolean");
      h.count = line == "t";
      return next;
    case ',': {
      double v = 0;
      auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
      if (line.empty() || ec != std::errc() || ptr != line.data() + line.size()) bad("double");
      h.number = v;
      return next;
    }
    default:
      bad("unknown type byte");
  }
}

std::size_t RespScanner::scan(const char* data, std::size_t size) {
  const char* end = data + size;
  for (;;) {
    RespHeader h;
    const char* at = data + pos_;
    const char* next = parse_header(at, end, h);
    if (!next) {
      wanted_ = size + 1;
      if (at < end && (*at == '$' || *at == '!' || *at == '=')) {
        // The header line may be complete: then the bulk's length says how much must come.
        auto* cr = static_cast<const char*>(std::memchr(at, '\r', static_cast<std::size_t>(end - at)));
        if (cr)
          wanted_ =
              pos_ + static_cast<std::size_t>(cr - at) + 2 +
              static_cast<std::size_t>(parse_length(std::string_view(at + 1, static_cast<std::size_t>(cr - at - 1)),
                                                    static_cast<long long>(max_bulk))) +
              2;
      }
      return 0;
    }
    pos_ = static_cast<std::size_t>(next - data);
    if (h.is_aggregate() && !h.null) {
      long long values = h.values() + (h.marker == '|' ? 1 : 0);
      if (values > 0) {
        if (values > 2 * max_elements + 1) bad("too many elements");
        if (depth_ == max_depth) bad("nested too deeply");
        left_[depth_++] = static_cast<std::uint32_t>(values);
        continue;
      }
    }
    // A complete value: close every level it completes.
    for (;;) {
      if (depth_ == 0) {
        std::size_t n = pos_;
        pos_ = 0;
        return n;
      }
      if (--left_[depth_ - 1] > 0) break;
      --depth_;
    }
  }
}

RespHeader RespReader::next() {
  RespHeader h;
  const char* n = parse_header(p_, end_, h);
  if (!n) bad("reply ends early");
  p_ = n;
  return h;
}

RespHeader RespReader::next_value() {
  RespHeader h = next();
  while (h.marker == '|') {
    skip_values(h);
    h = next();
  }
  return h;
}

void RespReader::skip_values(const RespHeader& h) {
  if (!h.is_aggregate() || h.null) return;
  for (long long i = 0; i < h.values(); ++i) {
    RespHeader c = next();
    skip_values(c);
    if (c.marker == '|') {  // the value the attributes belong to
      RespHeader one;
      one.marker = '*';
      one.count = 1;
      skip_values(one);
    }
  }
}

Reply read_reply(RespReader& r) { return read_reply(r, r.next()); }

Reply read_reply(RespReader& r, const RespHeader& h) {
  if (h.marker == '|') {
    Reply attrs;
    attrs.set_type(Type::map);
    auto& kv = attrs.mutable_elements();
    kv.reserve(static_cast<std::size_t>(h.values()));
    for (long long i = 0; i < h.values(); ++i) kv.push_back(read_reply(r));
    Reply v = read_reply(r);
    v.set_attributes(std::move(attrs));
    return v;
  }
  Type t = h.type();
  switch (t) {
    case Type::null:
      return Reply();
    case Type::integer:
      return Reply::make_integer(h.count);
    case Type::boolean:
      return Reply::make_boolean(h.count != 0);
    case Type::double_:
      return Reply::make_double(h.number);
    case Type::simple_string:
    case Type::error:
    case Type::bulk_string:
    case Type::big_number:
    case Type::verbatim:
      return Reply::make_string(t, h.text);
    case Type::array:
    case Type::map:
    case Type::set:
    case Type::push: {
      Reply a;
      a.set_type(t);
      auto& e = a.mutable_elements();
      // Reserve no more than the bytes left could hold (a hostile count must not reserve gigabytes).
      e.reserve(static_cast<std::size_t>(std::min<long long>(h.values(), 4096)));
      for (long long i = 0; i < h.values(); ++i) e.push_back(read_reply(r));
      return a;
    }
  }
  return Reply();
}

// --- Reply

Reply Reply::make_string(Type t, std::string_view s) {
  Reply r;
  r.type_ = t;
  r.str_.assign(s);
  return r;
}
Reply Reply::make_integer(long long v) noexcept {
  Reply r;
  r.type_ = Type::integer;
  r.integer_ = v;
  return r;
}
Reply Reply::make_double(double v) noexcept {
  Reply r;
  r.type_ = Type::double_;
  r.double_ = v;
  return r;
}
Reply Reply::make_boolean(bool v) noexcept {
  Reply r;
  r.type_ = Type::boolean;
  r.boolean_ = v;
  return r;
}

namespace {
[[noreturn]] void wrong(Type have, const char* want) {
  throw ReplyTypeError("redis: reply is a " + std::string(type_name(have)) + ", not " + want);
}
}  // namespace

std::string_view Reply::str() const {
  if (!is_string() && type_ != Type::error && type_ != Type::big_number) wrong(type_, "a string");
  if (type_ == Type::verbatim) return std::string_view(str_).substr(4);
  return str_;
}
std::string_view Reply::format() const {
  if (type_ != Type::verbatim) wrong(type_, "a verbatim string");
  return std::string_view(str_).substr(0, 3);
}
long long Reply::integer() const {
  if (type_ != Type::integer) wrong(type_, "an integer");
  return integer_;
}
double Reply::number() const {
  if (type_ == Type::integer) return static_cast<double>(integer_);
  if (type_ != Type::double_) wrong(type_, "a double");
  return double_;
}
bool Reply::boolean() const {
  if (type_ != Type::boolean) wrong(type_, "a boolean");
  return boolean_;
}
const std::vector<Reply>& Reply::elements() const {
  if (!is_aggregate()) wrong(type_, "an aggregate");
  return elements_;
}
const Reply* Reply::find(std::string_view key) const {
  if (type_ != Type::map) wrong(type_, "a map");
  for (std::size_t i = 0; i + 1 < elements_.size(); i += 2)
    if (elements_[i].is_string() && elements_[i].str() == key) return &elements_[i + 1];
  return nullptr;
}
std::optional<std::string> Reply::as_optional_string() const {
  if (type_ == Type::null) return std::nullopt;
  if (type_ == Type::error) throw ServerError(str_);
  return std::string(str());
}
void Reply::set_attributes(Reply attributes) { attributes_ = std::make_shared<Reply>(std::move(attributes)); }

std::string Reply::to_string() const {
  std::ostringstream os;
  switch (type_) {
    case Type::null:
      os << "(nil)";
      break;
    case Type::integer:
      os << "(integer) " << integer_;
      break;
    case Type::boolean:
      os << (boolean_ ? "(true)" : "(false)");
      break;
    case Type::double_:
      os << "(double) " << double_;
      break;
    case Type::error:
      os << "(error) " << str_;
      break;
    case Type::big_number:
      os << "(big number) " << str_;
      break;
    case Type::simple_string:
      os << str_;
      break;
    case Type::bulk_string:
    case Type::verbatim:
      os << '"' << str() << '"';
      break;
    case Type::array:
    case Type::map:
    case Type::set:
    case Type::push: {
      const char* open = type_ == Type::map ? "{" : type_ == Type::set ? "~[" : type_ == Type::push ? ">[" : "[";
      os << open;
      for (std::size_t i = 0; i < elements_.size(); ++i) {
        if (i) os << (type_ == Type::map && i % 2 ? ": " : ", ");
        os << elements_[i].to_string();
      }
      os << (type_ == Type::map ? "}" : "]");
      break;
    }
  }
  return os.str();
}

// --- writing

std::string_view Arg::text(char* buf) const noexcept {
  switch (kind_) {
    case Kind::bytes:
      return std::string_view(p_, n_);
    case Kind::integer: {
      auto r = std::to_chars(buf, buf + 32, i_);
      return std::string_view(buf, static_cast<std::size_t>(r.ptr - buf));
    }
    case Kind::floating: {
      // Redis reads doubles with strtod: "inf", "-inf" and the shortest round-trip form all parse.
      if (std::isinf(d_)) return d_ > 0 ? "inf" : "-inf";
      auto r = std::to_chars(buf, buf + 32, d_);
      return std::string_view(buf, static_cast<std::size_t>(r.ptr - buf));
    }
  }
  return {};
}

namespace {
inline void append_decimal(std::string& out, char marker, std::size_t n) {
  char buf[24];
  buf[0] = marker;
  auto r = std::to_chars(buf + 1, buf + 22, n);
  r.ptr[0] = '\r';
  r.ptr[1] = '\n';
  out.append(buf, static_cast<std::size_t>(r.ptr + 2 - buf));
}
}  // namespace

void Arg::append_to(std::string& out) const {
  char buf[32];
  std::string_view t = text(buf);
  append_decimal(out, '$', t.size());
  out.append(t);
  out.append("\r\n", 2);
}

void append_command(std::string& out, std::span<const Arg> args) {
  append_decimal(out, '*', args.size());
  for (const Arg& a : args) a.append_to(out);
}

}  // namespace tulipa::redis
