// Options::from_url: redis:// and rediss:// URLs (the IANA scheme, as redis-cli and redis-py read them).
#include <charconv>
#include <stdexcept>
#include <string>

#include "tulipa/redis/client.hpp"

namespace tulipa::redis {

namespace {

[[noreturn]] void bad(std::string_view url, const char* why) {
  throw std::invalid_argument("redis: bad URL '" + std::string(url) + "': " + why);
}

std::string percent_decode(std::string_view s, std::string_view url) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    unsigned v = 0;
    if (i + 2 >= s.size() + 0 || std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr != s.data() + i + 3)
      bad(url, "bad percent escape");
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

long long number(std::string_view s, std::string_view url, const char* what) {
  long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0) bad(url, what);
  return v;
}

}  // namespace

Options Options::from_url(std::string_view url) {
  Options o;
  std::string_view rest;
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("rediss://")) {
    rest = url.substr(9);
    o.tls = true;
  } else {
    bad(url, "the scheme must be redis:// or rediss://");
  }
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  if (auto s = rest.find('/'); s != std::string_view::npos) {
    path = rest.substr(s + 1);
    rest = rest.substr(0, s);
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto c = userinfo.find(':'); c != std::string_view::npos) {
      o.username = percent_decode(userinfo.substr(0, c), url);
      o.password = percent_decode(userinfo.substr(c + 1), url);
    } else {
      o.password = percent_decode(userinfo, url);  // redis://secret@host: the password alone, as redis-cli reads it
    }
  }
  std::string_view host = rest, port;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) bad(url, "unclosed [");
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') bad(url, "junk after ]");
      port = after.substr(1);
    }
  } else if (auto c = rest.rfind(':'); c != std::string_view::npos) {
    host = rest.substr(0, c);
    port = rest.substr(c + 1);
  }
  if (!host.empty()) o.host = std::string(host);
  if (!port.empty()) {
    long long p = number(port, url, "bad port");
    if (p == 0 || p > 65535) bad(url, "bad port");
    o.port = static_cast<std::uint16_t>(p);
  }
  if (!path.empty()) o.db = static_cast<int>(number(path, url, "the path must be a database number"));
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) bad(url, "a query parameter without '='");
    std::string_view k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "name" || k == "client_name")
      o.client_name = percent_decode(v, url);
    else if (k == "protocol") {
      o.protocol = static_cast<int>(number(v, url, "bad protocol"));
      if (o.protocol != 2 && o.protocol != 3) bad(url, "protocol must be 2 or 3");
    } else if (k == "db")
      o.db = static_cast<int>(number(v, url, "bad db"));
    else if (k == "connect_timeout")
      o.connect_timeout = std::chrono::milliseconds(number(v, url, "bad connect_timeout"));
    else if (k == "command_timeout")
      o.command_timeout = std::chrono::milliseconds(number(v, url, "bad command_timeout"));
    else
      bad(url, "unknown query parameter");
  }
  return o;
}

}  // namespace tulipa::redis
