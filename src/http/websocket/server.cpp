// The server side of the handshake: the standalone server, the upgrade from an HTTP server, the Origin check.
#include <algorithm>
#include <memory>

#include "connection.hpp"
#include "tulipa/http/message.hpp"
#include "tulipa/net.hpp"
#include "tulipa/tls_net.hpp"

namespace tulipa::websocket {

std::string_view UpgradeRequest::header(std::string_view name) const noexcept {
  for (auto& [n, v] : headers)
    if (detail::iequals(n, name)) return v;
  return {};
}

std::function<bool(const UpgradeRequest&)> same_origin(std::vector<std::string> allowed) {
  return [allowed = std::move(allowed)](const UpgradeRequest& r) {
    if (r.origin.empty()) return true;  // not a browser: nothing to hijack
    for (auto& a : allowed)
      if (detail::iequals(a, r.origin)) return true;
    std::string_view o = r.origin;
    std::size_t scheme = o.find("://");
    if (scheme == std::string_view::npos) return false;
    return detail::iequals(o.substr(scheme + 3), r.host);
  };
}

namespace detail {
namespace {

AcceptResult refuse(int status, std::string_view reason, std::string_view extra = {}) {
  AcceptResult r;
  r.status = status;
  std::string body = std::string(reason) + "\n";
  r.response = "HTTP/1.1 " + std::to_string(status) + " " +
               (status == 400   ? "Bad Request"
                : status == 403 ? "Forbidden"
                : status == 426 ? "Upgrade Required"
                                : "Error") +
               "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\nConnection: close\r\n" + std::string(extra) + "\r\n" + body;
  return r;
}

}  // namespace

AcceptResult server_accept(const UpgradeRequest& req, const SharedConfig& config) {
  const Options& o = config.options;
  if (!has_token(req.header("Upgrade"), "websocket"))
    return refuse(426, "expected Upgrade: websocket", "Upgrade: websocket\r\n");
  if (!has_token(req.header("Connection"), "upgrade")) return refuse(400, "expected Connection: Upgrade");
  if (req.host.empty()) return refuse(400, "missing Host");
  if (req.version != "13") return refuse(426, "unsupported Sec-WebSocket-Version", "Sec-WebSocket-Version: 13\r\n");
  if (!valid_client_key(req.key)) return refuse(400, "invalid Sec-WebSocket-Key");
  if (o.check_origin && !o.check_origin(req)) return refuse(403, "origin not allowed");
  AcceptResult r;
  std::string_view offered = req.protocols;
  while (!offered.empty() && r.subprotocol.empty()) {
    std::size_t comma = offered.find(',');
    std::string_view p = trim(offered.substr(0, comma));
    if (std::find(o.subprotocols.begin(), o.subprotocols.end(), p) != o.subprotocols.end()) r.subprotocol = p;
    if (comma == std::string_view::npos) break;
    offered.remove_prefix(comma + 1);
  }
  if (auto d = negotiate_deflate(req.extensions, o.deflate)) {
    r.deflate = d->first;
    r.extensions = std::move(d->second);
  }
  r.handler = config.factory ? config.factory(req) : nullptr;
  if (!r.handler) return refuse(403, "refused");
  r.response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
      accept_key(req.key) + "\r\n";
  if (!r.subprotocol.empty()) r.response += "Sec-WebSocket-Protocol: " + r.subprotocol + "\r\n";
  if (!r.extensions.empty()) r.response += "Sec-WebSocket-Extensions: " + r.extensions + "\r\n";
  for (auto& h : o.extra_headers) r.response += h + "\r\n";
  r.response += "\r\n";
  return r;
}

AcceptResult server_accept_head(std::string_view head, const SharedConfig& config) {
  auto h = parse_head(head);
  if (!h) return refuse(400, "malformed request");
  std::string_view line = h->first_line;
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return refuse(400, "malformed request line");
  if (line.substr(0, sp1) != "GET") return refuse(400, "a WebSocket handshake is a GET");
  if (line.substr(sp2 + 1) != "HTTP/1.1") return refuse(400, "a WebSocket handshake needs HTTP/1.1");
  std::string extensions = h->get_all("Sec-WebSocket-Extensions");
  std::string protocols = h->get_all("Sec-WebSocket-Protocol");
  UpgradeRequest req;
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  req.host = h->get("Host");
  req.origin = h->get("Origin");
  req.key = h->get("Sec-WebSocket-Key");
  req.version = h->get("Sec-WebSocket-Version");
  req.protocols = protocols;
  req.extensions = extensions;
  req.headers = h->headers;
  return server_accept(req, config);
}

}  // namespace detail

ProtocolFactory server_protocol_factory(EventLoop& loop, HandlerFactory factory, Options options) {
  auto config = std::make_shared<detail::SharedConfig>();
  config->options = std::move(options);
  config->factory = std::move(factory);
  std::shared_ptr<const detail::SharedConfig> shared = config;
  return [&loop, shared]() -> std::unique_ptr<StreamProtocol> {
    return std::make_unique<detail::WsConnection>(loop, shared);
  };
}

Server serve(EventLoop& loop, HandlerFactory factory, std::string_view host, std::uint16_t port, Options options,
             ServerOptions server_options) {
  return create_server(loop, server_protocol_factory(loop, std::move(factory), std::move(options)), host, port,
                       server_options);
}

Server serve(EventLoop& loop, HandlerFactory factory, std::string_view host, std::uint16_t port, const SslContext& ssl,
             Options options, ServerOptions server_options) {
  return create_server(loop, server_protocol_factory(loop, std::move(factory), std::move(options)), host, port, ssl,
                       server_options);
}

namespace {

std::unique_ptr<StreamProtocol> upgrade_with(Transport& transport, const UpgradeRequest& request,
                                             std::span<const std::byte> already_read,
                                             std::shared_ptr<const detail::SharedConfig> config) {
  detail::AcceptResult r = detail::server_accept(request, *config);
  transport.write(r.response);
  if (r.status != 101) {
    transport.close();
    return nullptr;
  }
  auto conn = std::make_unique<detail::WsConnection>(transport.get_loop(), std::move(config));
  detail::WsConnection* c = conn.get();
  std::unique_ptr<StreamProtocol> previous = transport.set_protocol(std::move(conn));
  c->open_upgraded(transport, std::move(r), already_read);
  return previous;
}

}  // namespace

std::unique_ptr<StreamProtocol> upgrade(Transport& transport, const UpgradeRequest& request,
                                        std::span<const std::byte> already_read, HandlerFactory factory,
                                        Options options) {
  auto config = std::make_shared<detail::SharedConfig>();
  config->options = std::move(options);
  config->factory = std::move(factory);
  return upgrade_with(transport, request, already_read, std::move(config));
}

Upgrader::Upgrader(HandlerFactory factory, Options options) {
  auto config = std::make_shared<detail::SharedConfig>();
  config->options = std::move(options);
  config->factory = std::move(factory);
  config_ = std::move(config);
}

http::Response Upgrader::operator()(http::Request& request) const {
  auto config = std::static_pointer_cast<const detail::SharedConfig>(config_);
  return http::Response::take_over([&request, config](Transport& transport, std::span<const std::byte> already_read) {
    // The request's views are valid during this call (message.hpp).
    std::string extensions, protocols;
    for (const http::Header& h : request.headers()) {
      if (detail::iequals(h.name, "Sec-WebSocket-Extensions"))
        extensions += (extensions.empty() ? "" : ", ") + std::string(h.value);
      if (detail::iequals(h.name, "Sec-WebSocket-Protocol"))
        protocols += (protocols.empty() ? "" : ", ") + std::string(h.value);
    }
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    headers.reserve(request.headers().size());
    for (const http::Header& h : request.headers()) headers.emplace_back(h.name, h.value);
    UpgradeRequest req;
    req.target = request.target();
    req.host = request.header("Host");
    req.origin = request.header("Origin");
    req.key = request.header("Sec-WebSocket-Key");
    req.version = request.header("Sec-WebSocket-Version");
    req.protocols = protocols;
    req.extensions = extensions;
    req.headers = headers;
    if (request.method() != "GET" || request.minor_version() != 1) {
      transport.write(std::string_view("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
      transport.close();
      return std::unique_ptr<StreamProtocol>();
    }
    return upgrade_with(transport, req, already_read, config);
  });
}

}  // namespace tulipa::websocket
