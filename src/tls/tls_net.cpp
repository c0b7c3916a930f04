// create_server / create_connection with TLS, and start_tls: each puts an SslProtocol between the socket transport
// and the application's protocol.
#include <memory>
#include <stdexcept>
#include <utility>

#include "tls/ssl_protocol.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/tls_net.hpp"

namespace tulipa {

SslTransport* as_ssl_transport(Transport& transport) noexcept { return dynamic_cast<SslTransport*>(&transport); }

ProtocolFactory ssl_server_factory(const SslContext& ssl, ProtocolFactory factory, SslOptions ssl_options) {
  if (ssl.role() != TlsRole::server) throw std::invalid_argument("TLS server: the context is not a server context");
  if (!factory) throw std::invalid_argument("TLS server: no protocol factory");
  return [ssl, factory = std::move(factory),
          config = detail::SslConfig::from(ssl_options)]() -> std::unique_ptr<StreamProtocol> {
    std::unique_ptr<StreamProtocol> app = factory();
    if (!app) return nullptr;  // the server refuses the connection and reports it
    return std::make_unique<detail::SslProtocol>(ssl, std::move(app), config, /*app_connected=*/false, nullptr);
  };
}

Server create_server(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                     const SslContext& ssl, ServerOptions options, SslOptions ssl_options) {
  return create_server(loop, ssl_server_factory(ssl, std::move(factory), ssl_options), host, port,
                       std::move(options));
}

Future<Server> create_server_async(EventLoop& loop, ProtocolFactory factory, std::string_view host,
                                   std::uint16_t port, const SslContext& ssl, ServerOptions options,
                                   SslOptions ssl_options) {
  return create_server_async(loop, ssl_server_factory(ssl, std::move(factory), ssl_options), host, port,
                             std::move(options));
}

ConnectHandle create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                const SslContext& ssl, ConnectCallback done, ConnectOptions options,
                                SslOptions ssl_options) {
  if (ssl.role() != TlsRole::client) throw std::invalid_argument("create_connection: the context is not a client one");
  if (!factory) throw std::invalid_argument("create_connection: no protocol factory");
  if (!done) throw std::invalid_argument("create_connection: no completion callback");
  detail::SslConfig config = detail::SslConfig::from(ssl_options);
  if (config.server_hostname.empty()) config.server_hostname = std::string(host);
  // Two stages may report: the TCP connect (its errors) and the TLS layer (the transport, or the handshake's error).
  auto shared_done = std::make_shared<ConnectCallback>(std::move(done));
  ProtocolFactory tls_factory = [ssl, factory = std::move(factory), config = std::move(config),
                                 shared_done]() -> std::unique_ptr<StreamProtocol> {
    std::unique_ptr<StreamProtocol> app = factory();
    if (!app) throw std::logic_error("create_connection: the protocol factory returned null");
    return std::make_unique<detail::SslProtocol>(
        ssl, std::move(app), config, /*app_connected=*/false,
        [shared_done](Transport* transport, std::exception_ptr error) { (*shared_done)(transport, error); });
  };
  // The TCP stage's handle: cancelling it destroys the TCP callback and the factory, and with them shared_done.
  return create_connection(
      loop, std::move(tls_factory), host, port,
      [shared_done](Transport*, std::exception_ptr error) {
        if (error) (*shared_done)(nullptr, error);  // success is told by the TLS layer, after the handshake
      },
      std::move(options));
}

void start_tls(Transport& transport, const SslContext& ssl, ConnectCallback done, SslOptions ssl_options) {
  if (!done) throw std::invalid_argument("start_tls: no completion callback");
  if (transport.is_closing()) throw std::logic_error("start_tls: the transport is closing");
  if (ssl.role() == TlsRole::client && ssl.check_hostname() && ssl_options.server_hostname.empty()) {
    throw std::invalid_argument("start_tls: the context checks host names, so ssl_options.server_hostname is needed");
  }
  auto owned = std::make_unique<detail::SslProtocol>(ssl, nullptr, detail::SslConfig::from(ssl_options),
                                                     /*app_connected=*/true,
                                                     std::move(done));
  detail::SslProtocol& tls = *owned;
  tls.adopt_app(transport.set_protocol(std::move(owned)));
  tls.connection_made(transport);
}

}  // namespace tulipa
