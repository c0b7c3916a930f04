// Streams over TLS: the streams' own protocol (StreamConnection) runs behind the TLS layer, unchanged.
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "streams/stream_connection.hpp"
#include "tls/ssl_protocol.hpp"
#include "tulipa/tls_streams.hpp"

namespace tulipa {

OpenConnection open_connection(EventLoop& loop, std::string_view host, std::uint16_t port, const SslContext& ssl,
                               StreamOptions options, SslOptions ssl_options) {
  const std::size_t limit = options.limit;
  return OpenConnection(
      [&loop, host = std::string(host), port, limit, ssl, connect = options.connect,
       config = detail::SslConfig::from(ssl_options)](ConnectCallback done) mutable {
        // The awaiter finds its StreamConnection as the transport's protocol: the TLS transport's protocol is it.
        create_connection(
            loop, [limit]() -> std::unique_ptr<StreamProtocol> {
              return std::unique_ptr<StreamProtocol>(detail::StreamConnection::create(limit, true));
            },
            host, port, ssl, std::move(done), connect, config.view());
      },
      limit);
}

Server start_server(EventLoop& loop, ClientConnected client_connected, std::string_view host, std::uint16_t port,
                    const SslContext& ssl, StreamServerOptions options, SslOptions ssl_options) {
  if (!client_connected) throw std::invalid_argument("start_server: no client_connected callback");
  detail::StreamConnection::check_limit(options.limit);
  // Owned by the factory, which the server keeps while it has connections: a connection's connection_made comes
  // only after its handshake, later than for plain TCP, and still finds the callback alive.
  auto cb = std::make_shared<ClientConnected>(std::move(client_connected));
  const std::size_t limit = options.limit;
  ProtocolFactory streams = [cb, limit]() -> std::unique_ptr<StreamProtocol> {
    return std::unique_ptr<StreamProtocol>(detail::StreamConnection::create_for_server(limit, cb.get()));
  };
  return create_server(loop, std::move(streams), host, port, ssl, std::move(options.server), ssl_options);
}

}  // namespace tulipa
