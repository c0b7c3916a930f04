// tulipa-chat's command line (Debian's CLI11). Bad values print a clear error and give exit code 2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/hub.hpp"

namespace chat {

struct Endpoint {
  std::string host{};
  std::uint16_t port = 0;
};

struct Options {
  Endpoint tcp{"127.0.0.1", 7070};
  Endpoint http{"127.0.0.1", 8080};
  std::string web_root{};                      // empty: share/tulipa-chat/web beside the binary, else the sources'
  std::vector<std::string> allowed_origins{};  // WebSocket upgrades from these origins too (besides our own)
  bool ws_deflate = false;                     // accept permessage-deflate (WebOptions::deflate)
  std::string store = "sqlite:tulipa-chat-data/chat.db";
  std::string redis{};                // redis://...: share rooms with other instances (empty: alone)
  std::size_t loops = 1;              // --loops N: event loops (threads), rooms shared across them (bus/loop_bus.hpp)
  unsigned redis_liveness = 10;       // seconds an instance's nicks stay claimed after it stopped answering (it died)
  std::string tls_cert{}, tls_key{};  // both or neither
  Limits limits{};
};

// "HOST:PORT", "[V6]:PORT" or ":PORT" (every address); nullopt when it is not one.
std::optional<Endpoint> parse_endpoint(const std::string& text);

// The options, or the exit code to leave with (0 after --help, 2 after an error, which was printed).
struct Parsed {
  std::optional<Options> options{};
  int exit_code = 0;
};
Parsed parse_options(int argc, const char* const* argv);

}  // namespace chat
