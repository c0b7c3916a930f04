// The client: URL parsing, the TCP (or TLS) connection, the handshake as the connection's first phase.
#include <charconv>

#include "coro_state.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/tls.hpp"
#include "tulipa/tls_net.hpp"

namespace tulipa::websocket {
namespace {

struct Url {
  bool secure = false;
  std::string host;  // without brackets
  std::uint16_t port = 0;
  std::string host_header;  // host[:port] as the Host header wants it
  std::string target;       // path and query
};

Url parse_url(std::string_view url) {
  Url u;
  std::string_view rest;
  if (url.substr(0, 5) == "ws://") {
    rest = url.substr(5);
  } else if (url.substr(0, 6) == "wss://") {
    u.secure = true;
    rest = url.substr(6);
  } else {
    throw std::invalid_argument("websocket: URL must start with ws:// or wss://");
  }
  std::size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  if (std::size_t hash = path.find('#'); hash != std::string_view::npos) path = path.substr(0, hash);
  u.target = path.empty() || path[0] != '/' ? "/" + std::string(path) : std::string(path);
  if (authority.find('@') != std::string_view::npos) throw std::invalid_argument("websocket: user info in URL");
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("websocket: bad IPv6 host in URL");
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw std::invalid_argument("websocket: bad URL authority");
      port = authority.substr(close + 2);
    }
  } else {
    std::size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw std::invalid_argument("websocket: URL without host");
  u.port = u.secure ? 443 : 80;
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535)
      throw std::invalid_argument("websocket: bad port in URL");
    u.port = static_cast<std::uint16_t>(v);
  }
  std::string h = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  bool default_port = u.port == (u.secure ? 443 : 80);
  u.host_header = default_port ? h : h + ":" + std::to_string(u.port);
  return u;
}

}  // namespace

namespace {
Coro<WebSocket> connect_coro(std::string url_text, ConnectOptions options) {
  Url url = parse_url(url_text);
  EventLoop& loop = get_running_loop();
  auto config = std::make_shared<detail::SharedConfig>();
  config->options = std::move(options.options);
  std::shared_ptr<const detail::SharedConfig> shared = config;
  auto* st = new detail::CoroState(loop);
  WebSocket ws(st);  // holds st
  Future<void> handshake(loop);
  ProtocolFactory factory = [&]() -> std::unique_ptr<StreamProtocol> {
    return std::make_unique<detail::WsConnection>(loop, shared, std::make_unique<detail::Bridge>(st), url.host_header,
                                                  url.target, options.origin,
                                                  [handshake](std::exception_ptr e) mutable {
                                                    if (e)
                                                      handshake.try_set_exception(e);
                                                    else
                                                      handshake.try_set_result();
                                                  });
  };
  Transport* transport = nullptr;
  if (url.secure) {
    Future<Transport*> connected(loop);
    SslContext ctx = options.ssl ? *options.ssl : SslContext::client();
    SslOptions ssl_options;
    ssl_options.server_hostname = url.host;
    ConnectHandle attempt = create_connection(
        loop, factory, url.host, url.port, ctx,
        [connected](Transport* t, std::exception_ptr e) mutable {
          if (e)
            connected.try_set_exception(e);
          else if (!connected.try_set_result(t))
            t->abort();
        },
        {}, ssl_options);
    try {
      transport = co_await connected;
    } catch (...) {
      attempt.cancel();
      throw;
    }
  } else {
    transport = co_await create_connection(loop, factory, url.host, url.port);
  }
  try {
    co_await handshake;
  } catch (...) {
    // Cancelled during the handshake (a failed handshake has closed the connection already).
    if (!handshake.done() || handshake.cancelled()) transport->abort();
    throw;
  }
  co_return ws;
}
}  // namespace

Coro<WebSocket> connect(std::string_view url) { return connect_coro(std::string(url), ConnectOptions()); }
Coro<WebSocket> connect(std::string_view url, const ConnectOptions& options) {
  return connect_coro(std::string(url), options);
}

}  // namespace tulipa::websocket
