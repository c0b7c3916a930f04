#include "handshake.hpp"

#include <stdlib.h>  // arc4random_buf

#include <array>
#include <charconv>
#include <cstring>

namespace tulipa::websocket::detail {
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

std::array<unsigned char, 20> sha1(std::string_view msg) {
  std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  std::string m(msg);
  std::uint64_t bits = std::uint64_t{msg.size()} * 8;
  m.push_back('\x80');
  while (m.size() % 64 != 56) m.push_back('\0');
  for (int i = 7; i >= 0; --i) m.push_back(static_cast<char>(bits >> (8 * i)));
  auto rol = [](std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
  for (std::size_t off = 0; off < m.size(); off += 64) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      auto* p = reinterpret_cast<const unsigned char*>(m.data() + off + 4 * i);
      w[i] = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
    }
    for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20)
        f = (b & c) | (~b & d), k = 0x5A827999;
      else if (i < 40)
        f = b ^ c ^ d, k = 0x6ED9EBA1;
      else if (i < 60)
        f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
      else
        f = b ^ c ^ d, k = 0xCA62C1D6;
      std::uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
  }
  std::array<unsigned char, 20> out;
  for (int i = 0; i < 20; ++i) out[i] = static_cast<unsigned char>(h[i / 4] >> (24 - 8 * (i % 4)));
  return out;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const unsigned char* p, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    std::uint32_t v = std::uint32_t{p[i]} << 16;
    if (i + 1 < n) v |= std::uint32_t{p[i + 1]} << 8;
    if (i + 2 < n) v |= p[i + 2];
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kB64[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kB64[v & 63] : '=');
  }
  return out;
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// One extension offer's parameters: name -> optional value (quotes removed).
struct Param {
  std::string_view name;
  std::string_view value;
  bool has_value = false;
};

// Splits "a; p1; p2=v, b; q" into offers (by commas outside quotes) of parameters.
std::vector<std::vector<Param>> parse_extensions(std::string_view header) {
  std::vector<std::vector<Param>> offers;
  std::size_t i = 0;
  while (i <= header.size()) {
    std::size_t comma = header.find(',', i);
    if (comma == std::string_view::npos) comma = header.size();
    std::string_view offer = header.substr(i, comma - i);
    std::vector<Param> params;
    std::size_t j = 0;
    while (j <= offer.size()) {
      std::size_t semi = offer.find(';', j);
      if (semi == std::string_view::npos) semi = offer.size();
      std::string_view item = trim(offer.substr(j, semi - j));
      Param p;
      std::size_t eq = item.find('=');
      if (eq == std::string_view::npos) {
        p.name = item;
      } else {
        p.name = trim(item.substr(0, eq));
        p.value = trim(item.substr(eq + 1));
        if (p.value.size() >= 2 && p.value.front() == '"' && p.value.back() == '"')
          p.value = p.value.substr(1, p.value.size() - 2);
        p.has_value = true;
      }
      params.push_back(p);
      j = semi + 1;
    }
    if (!params.empty() && !params[0].name.empty()) offers.push_back(std::move(params));
    i = comma + 1;
  }
  return offers;
}

std::optional<int> window_value(std::string_view v) {
  if (v.empty() || v.size() > 2) return std::nullopt;
  int n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 8 || n > 15) return std::nullopt;
  if (v[0] == '0') return std::nullopt;
  return n;
}

}  // namespace

std::string accept_key(std::string_view key) {
  std::string s(key);
  s += kGuid;
  auto d = sha1(s);
  return base64(d.data(), d.size());
}

std::string generate_key() {
  unsigned char k[16];
  arc4random_buf(k, sizeof k);
  return base64(k, sizeof k);
}

bool valid_client_key(std::string_view key) {
  // 16 bytes in base64: 22 characters and "==".
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i)
    if (!std::strchr(kB64, key[i]) || key[i] == '\0') return false;
  return true;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_token(std::string_view list, std::string_view token) noexcept {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<std::pair<DeflateParams, std::string>> negotiate_deflate(std::string_view header,
                                                                       const DeflateOptions& ours) {
  if (!ours.enabled) return std::nullopt;
  for (auto& offer : parse_extensions(header)) {
    if (!iequals(offer[0].name, "permessage-deflate")) continue;
    DeflateParams p;
    bool ok = true, seen_snct = false, seen_cnct = false, client_bits_offered = false;
    std::optional<int> server_bits, client_bits;
    for (std::size_t i = 1; i < offer.size() && ok; ++i) {
      const Param& q = offer[i];
      if (iequals(q.name, "server_no_context_takeover") && !q.has_value && !seen_snct) {
        seen_snct = p.server_no_context_takeover = true;
      } else if (iequals(q.name, "client_no_context_takeover") && !q.has_value && !seen_cnct) {
        seen_cnct = p.client_no_context_takeover = true;
      } else if (iequals(q.name, "server_max_window_bits") && q.has_value && !server_bits) {
        server_bits = window_value(q.value);
        ok = server_bits.has_value();
      } else if (iequals(q.name, "client_max_window_bits") && !client_bits_offered) {
        client_bits_offered = true;
        if (q.has_value) {
          client_bits = window_value(q.value);
          ok = client_bits.has_value();
        }
      } else {
        ok = false;
      }
    }
    if (!ok) continue;
    std::string resp = "permessage-deflate";
    if (ours.no_context_takeover) p.server_no_context_takeover = true;
    if (p.server_no_context_takeover) resp += "; server_no_context_takeover";
    if (ours.request_peer_no_context_takeover) p.client_no_context_takeover = true;
    if (p.client_no_context_takeover) resp += "; client_no_context_takeover";
    if (server_bits) {
      p.server_max_window_bits = static_cast<std::uint8_t>(*server_bits);
      resp += "; server_max_window_bits=" + std::to_string(*server_bits);
    }
    if (client_bits_offered) {
      int bits = client_bits ? *client_bits : 15;
      if (ours.inflate_window_bits < bits) bits = ours.inflate_window_bits;
      p.client_max_window_bits = static_cast<std::uint8_t>(bits);
      if (bits < 15 || client_bits) resp += "; client_max_window_bits=" + std::to_string(bits);
    }
    return std::pair{p, resp};
  }
  return std::nullopt;
}

std::string deflate_offer(const DeflateOptions& ours) {
  std::string s = "permessage-deflate";
  if (ours.request_peer_no_context_takeover) s += "; server_no_context_takeover";
  if (ours.no_context_takeover) s += "; client_no_context_takeover";
  if (ours.inflate_window_bits < 15) s += "; server_max_window_bits=" + std::to_string(ours.inflate_window_bits);
  s += "; client_max_window_bits";
  return s;
}

std::optional<DeflateParams> accept_deflate_response(std::string_view header, const DeflateOptions& ours) {
  auto offers = parse_extensions(header);
  if (offers.size() != 1 || !iequals(offers[0][0].name, "permessage-deflate")) return std::nullopt;
  DeflateParams p;
  bool seen_s = false, seen_c = false, seen_sb = false, seen_cb = false;
  for (std::size_t i = 1; i < offers[0].size(); ++i) {
    const Param& q = offers[0][i];
    if (iequals(q.name, "server_no_context_takeover") && !q.has_value && !seen_s) {
      seen_s = p.server_no_context_takeover = true;
    } else if (iequals(q.name, "client_no_context_takeover") && !q.has_value && !seen_c) {
      seen_c = p.client_no_context_takeover = true;
    } else if (iequals(q.name, "server_max_window_bits") && q.has_value && !seen_sb) {
      seen_sb = true;
      auto v = window_value(q.value);
      if (!v) return std::nullopt;
      // We may have asked for at most inflate_window_bits: a larger answer breaks our inflater's promise.
      if (ours.inflate_window_bits < 15 && *v > ours.inflate_window_bits) return std::nullopt;
      p.server_max_window_bits = static_cast<std::uint8_t>(*v);
    } else if (iequals(q.name, "client_max_window_bits") && q.has_value && !seen_cb) {
      seen_cb = true;
      auto v = window_value(q.value);
      if (!v) return std::nullopt;
      p.client_max_window_bits = static_cast<std::uint8_t>(*v);
    } else {
      return std::nullopt;
    }
  }
  if (ours.request_peer_no_context_takeover && !p.server_no_context_takeover) return std::nullopt;
  if (ours.inflate_window_bits < 15 && !seen_sb) return std::nullopt;
  if (ours.no_context_takeover) p.client_no_context_takeover = true;
  return p;
}

std::string_view HttpHead::get(std::string_view name) const noexcept {
  for (auto& [n, v] : headers)
    if (iequals(n, name)) return v;
  return {};
}

std::string HttpHead::get_all(std::string_view name) const {
  std::string out;
  for (auto& [n, v] : headers)
    if (iequals(n, name)) {
      if (!out.empty()) out += ", ";
      out += v;
    }
  return out;
}

std::optional<HttpHead> parse_head(std::string_view head) {
  HttpHead h;
  std::size_t eol = head.find("\r\n");
  h.first_line = head.substr(0, eol);
  if (h.first_line.find_first_of("\r\n") != std::string_view::npos || h.first_line.empty()) return std::nullopt;
  std::size_t i = eol == std::string_view::npos ? head.size() : eol + 2;
  while (i < head.size()) {
    std::size_t e = head.find("\r\n", i);
    if (e == std::string_view::npos) e = head.size();
    std::string_view line = head.substr(i, e - i);
    if (line.find('\r') != std::string_view::npos || line.find('\n') != std::string_view::npos) return std::nullopt;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string_view name = line.substr(0, colon);
    for (char c : name)
      if (!is_tchar(c)) return std::nullopt;  // also refuses obs-fold (a line starting with a space)
    std::string_view value = trim(line.substr(colon + 1));
    for (char c : value)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7F) return std::nullopt;
    h.headers.emplace_back(name, value);
    i = e + 2;
  }
  return h;
}

}  // namespace tulipa::websocket::detail
