#include "options.hpp"

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdio>

#include "core/text.hpp"
#include "tulipa/redis/client.hpp"

namespace chat {

std::optional<Endpoint> parse_endpoint(const std::string& text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = text.substr(0, colon);
  std::string port = text.substr(colon + 1);
  if (host.starts_with('[')) {
    if (!host.ends_with(']')) return std::nullopt;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return std::nullopt;  // an IPv6 address needs its brackets
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) return std::nullopt;
  return Endpoint{host, static_cast<std::uint16_t>(value)};
}

Parsed parse_options(int argc, const char* const* argv) {
  Options o;
  CLI::App app{"tulipa-chat: a chat server for terminals (TCP lines) and browsers (WebSocket) on tulipa",
               "tulipa-chat"};
  std::string tcp = "127.0.0.1:7070";
  std::string http = "127.0.0.1:8080";
  std::vector<std::string> tls;
  unsigned idle = static_cast<unsigned>(o.limits.idle.count());
  auto endpoint = CLI::Validator(
      [](std::string& v) {
        return parse_endpoint(v) ? std::string() : "expected HOST:PORT (port 0 to 65535), not '" + v + "'";
      },
      "HOST:PORT");

  app.add_option("--tcp", tcp, "where line clients connect (nc HOST PORT)")->check(endpoint)->capture_default_str();
  app.add_option("--http", http, "where browsers connect (the page, and its WebSocket at /ws)")
      ->check(endpoint)
      ->capture_default_str();
  app.add_option("--web-root", o.web_root, "the folder of the page's files (index.html, app.js, style.css)")
      ->check(CLI::ExistingDirectory);
  app.add_flag("--ws-deflate", o.ws_deflate,
               "accept permessage-deflate from browsers (up to 8 KB of windows kept per connection that uses it)");
  app.add_option("--allow-origin", o.allowed_origins,
                 "also accept WebSocket upgrades from this origin (https://example.com); repeatable");
  app.add_option("--store", o.store,
                 "where history is kept: sqlite:PATH (directory made if missing), postgres://USER@HOST/DB (a libpq "
                 "URI; instances sharing rooms through --redis share it) or memory:")
      ->check(CLI::Validator(
          [](std::string& v) {
            if (v.starts_with("sqlite:") && v.size() > 7) return std::string();
            if ((v.starts_with("postgres://") || v.starts_with("postgresql://")) && !v.ends_with("://"))
              return std::string();
            if (v == "memory:") return std::string();
            return "expected sqlite:PATH, postgres://... or memory:, not '" + v + "'";
          },
          "STORE"))
      ->capture_default_str();
  app.add_option("--redis", o.redis,
                 "share rooms with other instances through this Redis (redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]); "
                 "they must share one --store (postgres://...)")
      ->check(CLI::Validator(
          [](std::string& v) {
            try {
              (void)tulipa::redis::Options::from_url(v);
              return std::string();
            } catch (const std::exception& e) {
              return "expected redis://HOST[:PORT] or rediss://..., not '" + v + "' (" + e.what() + ")";
            }
          },
          "URL"));
  app.add_option("--loops", o.loops,
                 "event loops, one thread each, sharing the ports (SO_REUSEPORT) and the rooms; more than 1 needs "
                 "--store sqlite:... or postgres://... (with --redis, each loop is an instance for Redis)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--redis-liveness", o.redis_liveness,
                 "seconds a dead instance's nicks stay taken (--redis; it refreshes its claim every third of it)")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--tls", tls,
                 "serve TLS with this certificate chain and key (PEM files): line clients, and the page and its "
                 "WebSocket (https://, wss://)")
      ->expected(2)
      ->check(CLI::ExistingFile)
      ->type_name("CERT KEY");
  auto& l = o.limits;
  app.add_option("--history", l.history, "messages of a room replayed on join")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--default-room", l.default_room, "the room clients start in")->capture_default_str();
  app.add_option("--max-line", l.max_line, "bytes of one line from a client")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-nick", l.max_nick, "characters of a nick")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--max-queue", l.max_queue, "bytes waiting for one client before it is dropped as too slow")
      ->check(CLI::Range(4096, 1 << 30))
      ->capture_default_str();
  app.add_option("--max-clients", l.max_clients, "connections in total")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max-per-ip", l.max_per_ip, "connections from one address")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--idle", idle, "seconds a silent client stays connected (0: forever)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--flood-rate", l.flood_rate, "lines a second one client may send, sustained")
      ->check(CLI::Range(0.1, 1e6))
      ->capture_default_str();
  app.add_option("--flood-burst", l.flood_burst, "lines one client may send at once")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  app.add_option("--flood-line-bytes", l.flood_line_bytes,
                 "bytes that count as one line for the flood limits (a longer line costs its size in lines)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--flood-warn", l.flood_warn, "lines in a row over the rate before a warning")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--flood-kick", l.flood_kick, "lines in a row over the rate before disconnection")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--lines-per-pass", l.lines_per_pass, "lines of one client handled before the others' turn")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--writes-per-pass", l.writes_per_pass,
                 "members written in one loop pass (the others wait for the next, longest waiting first)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return {std::nullopt, app.exit(e)};
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tulipa-chat: %s\n(tulipa-chat --help lists the options)\n", e.what());
    return {std::nullopt, 2};
  }
  if (std::string_view why = room_error(l.default_room, l.max_room); !why.empty()) {
    std::fprintf(stderr, "tulipa-chat: --default-room: %.*s\n", static_cast<int>(why.size()), why.data());
    return {std::nullopt, 2};
  }
  if (l.flood_warn > l.flood_kick) {
    std::fprintf(stderr, "tulipa-chat: --flood-warn (%u) must not be above --flood-kick (%u)\n", l.flood_warn,
                 l.flood_kick);
    return {std::nullopt, 2};
  }
  if (o.loops > 1 && o.store == "memory:") {
    std::fprintf(stderr, "tulipa-chat: --loops above 1 needs a store the loops share (sqlite:... or postgres://...)\n");
    return {std::nullopt, 2};
  }
  if (!o.redis.empty() && o.store == "memory:") {
    std::fprintf(stderr, "tulipa-chat: --redis needs a store the instances share (postgres://...), not memory:\n");
    return {std::nullopt, 2};
  }
  o.tcp = *parse_endpoint(tcp);
  o.http = *parse_endpoint(http);
  if (tls.size() == 2) {
    o.tls_cert = tls[0];
    o.tls_key = tls[1];
  }
  l.idle = std::chrono::seconds(idle);
  return {std::move(o), 0};
}

}  // namespace chat
