// The typed helpers' decoders (redis/detail/command.hpp): a reply's frame straight into the caller's type, reading
// the headers in place (no Reply tree in between).
#include <string>

#include "tulipa/redis/detail/command.hpp"

namespace tulipa::redis::detail {

namespace {

[[noreturn]] void wrong(const RespHeader& h, const char* want) {
  throw ReplyTypeError("redis: reply is a " + std::string(type_name(h.type())) + ", expected " + want);
}

bool is_text(const RespHeader& h) noexcept {
  return !h.null && (h.marker == '$' || h.marker == '+' || h.marker == '=' || h.marker == '(');
}

std::string_view text(const RespHeader& h) {
  if (!is_text(h)) wrong(h, "a string");
  return h.marker == '=' ? h.text.substr(4) : h.text;
}

std::string_view next_text(RespReader& r) { return text(r.next_value()); }

// An aggregate header (array, set, push, or a map when `map_ok`); `values` is how many values follow.
RespHeader aggregate(RespReader& r, bool map_ok = false) {
  RespHeader h = r.next_value();
  if (h.null) return h;
  if (!(h.marker == '*' || h.marker == '~' || h.marker == '>' || (map_ok && h.marker == '%'))) wrong(h, "an array");
  return h;
}

StreamEntry read_entry(RespReader& r) {
  RespHeader e = aggregate(r);
  if (e.null || e.count != 2) throw ReplyTypeError("redis: a stream entry is not [id, fields]");
  StreamEntry entry;
  entry.id = next_text(r);
  RespHeader f = aggregate(r, true);
  if (!f.null) {
    long long n = f.values() / 2;
    entry.fields.reserve(static_cast<std::size_t>(n));
    for (long long i = 0; i < n; ++i) {
      std::string k(next_text(r));
      entry.fields.emplace_back(std::move(k), std::string(next_text(r)));
    }
  }
  return entry;
}

std::vector<StreamEntry> read_entries(RespReader& r) {
  std::vector<StreamEntry> v;
  RespHeader h = aggregate(r);
  if (h.null) return v;
  v.reserve(static_cast<std::size_t>(h.count));
  for (long long i = 0; i < h.count; ++i) v.push_back(read_entry(r));
  return v;
}

}  // namespace

void decode(RespReader& r, Reply& v) { v = read_reply(r); }

void decode(RespReader& r, Ok&) { r.next_value(); }

void decode(RespReader& r, std::optional<std::string>& v) {
  RespHeader h = r.next_value();
  if (h.null)
    v.reset();
  else
    v.emplace(text(h));
}

void decode(RespReader& r, std::string& v) {
  RespHeader h = r.next_value();
  v.assign(text(h));
}

void decode(RespReader& r, long long& v) {
  RespHeader h = r.next_value();
  if (h.marker != ':') wrong(h, "an integer");
  v = h.count;
}

void decode(RespReader& r, bool& v) {
  RespHeader h = r.next_value();
  if (h.marker != ':' && h.marker != '#') wrong(h, "an integer or a boolean");
  v = h.count != 0;
}

void decode(RespReader& r, StringInto& v) {
  RespHeader h = r.next_value();
  v.found = !h.null;
  if (v.found) v.out->assign(text(h));
}

void decode(RespReader& r, SetResult& v) {
  RespHeader h = r.next_value();
  v.done = !h.null;
}

void decode(RespReader& r, std::vector<std::optional<std::string>>& v) {
  RespHeader h = aggregate(r);
  v.clear();
  if (h.null) return;
  v.reserve(static_cast<std::size_t>(h.count));
  for (long long i = 0; i < h.count; ++i) {
    RespHeader e = r.next_value();
    if (e.null)
      v.emplace_back();
    else
      v.emplace_back(std::string(text(e)));
  }
}

void decode(RespReader& r, std::vector<StreamEntry>& v) { v = read_entries(r); }

// XREAD: a map {stream: entries} in RESP3, an array of [stream, entries] in RESP2; null when nothing came.
void decode(RespReader& r, std::vector<StreamEntries>& v) {
  v.clear();
  RespHeader h = aggregate(r, true);
  if (h.null) return;
  bool map = h.marker == '%';
  for (long long i = 0; i < h.count; ++i) {
    if (!map) {
      RespHeader pair = aggregate(r);
      if (pair.null || pair.count != 2) throw ReplyTypeError("redis: XREAD's stream is not [name, entries]");
    }
    StreamEntries s;
    s.stream = next_text(r);
    s.entries = read_entries(r);
    v.push_back(std::move(s));
  }
}

void decode(RespReader& r, std::optional<KeyValue>& v) {
  RespHeader h = aggregate(r);
  if (h.null) {
    v.reset();
    return;
  }
  if (h.count != 2) throw ReplyTypeError("redis: a blocking pop's reply is not [key, value]");
  KeyValue kv;
  kv.key = next_text(r);
  kv.value = next_text(r);
  v = std::move(kv);
}

}  // namespace tulipa::redis::detail
