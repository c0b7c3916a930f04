// The chat's web side: the page (static/: plain HTML, CSS and JS, no build step) served by tulipa's HTTP server,
// and the WebSocket at /ws whose connections are hub members in the JSON wire format (core/format.hpp).
//
// A page connects to /ws?nick=NAME&room=ROOM&after=ID when it reconnects, so that it gets its name and room back
// and only the messages it missed (Hub::connect's Hello). The upgrade's Origin must be this server's own (or one
// of `allowed_origins`): another site's page cannot open a chat connection with the visitor's browser.
//
// With a TLS context (--tls CERT KEY) the page and its WebSocket are served over TLS only (https://, wss://): the
// HTTP server listens nowhere itself and a TLS listener feeds it (http::Server::factory(true)); the page picks
// wss:// by itself when it was loaded over https.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/hub.hpp"
#include "tulipa/http/server.hpp"
#include "tulipa/server.hpp"

namespace tulipa {
class SslContext;
}

namespace chat {

struct WebOptions {
  std::string root{};                          // the folder of index.html, app.js, style.css
  std::vector<std::string> allowed_origins{};  // besides the same origin ("https://example.com")
  // permessage-deflate, off by default: the chat's messages are short JSON lines, and a compressed connection keeps
  // its windows between messages (up to 8 KB at 12 bits: an idle browser then costs up to 8 times the 1 KiB budget).
  bool deflate = false;
  // https and wss only, with this server context (borrowed until the server is shut down; it should offer ALPN
  // "http/1.1"); null: plain http.
  const tulipa::SslContext* tls = nullptr;
  bool reuse_port = false;  // beside the other loops' servers on the same port (--loops)
};

// The page's server, and with TLS the listener that feeds it.
struct WebServer {
  tulipa::http::Server http;
  tulipa::Server tls_listener;
  bool encrypted() const noexcept { return static_cast<bool>(tls_listener); }
  std::uint16_t port() const;
  // Stops listening; requests in progress may finish within `grace` (http::Server::shutdown).
  tulipa::Future<void> shutdown(tulipa::Duration grace);
};

// Reads the page's files (throws std::runtime_error when one is missing) and listens on host:port.
WebServer start_web_server(tulipa::EventLoop& loop, Hub& hub, std::string_view host, std::uint16_t port,
                           const WebOptions& options);

// The Hello a page asks for in its /ws target's query ("nick=alice&room=lobby&after=42"); what does not parse is
// left out.
Hello parse_hello(std::string_view target);

}  // namespace chat
