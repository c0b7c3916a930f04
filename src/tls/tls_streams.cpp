// Streams over TLS: the streams' own protocol (StreamReaderProtocol) runs behind the TLS layer, unchanged.
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "streams/open_stream.hpp"
#include "streams/server_host.hpp"
#include "streams/stream_reader_protocol.hpp"
#include "tls/ssl_protocol.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/tls_streams.hpp"

namespace tulipa {

Coro<StreamPair> open_connection(EventLoop& loop, std::string_view host, std::uint16_t port, const SslContext& ssl,
                                 StreamOptions options, SslOptions ssl_options) {
  // SslOptions only borrows (server_hostname, session) until create_connection takes it: the coroutine keeps the
  // copied configuration instead, and hands create_connection a view of it.
  return detail::open_stream(
      options.limit, [&loop, host = std::string(host), port, ssl, connect = std::move(options.connect),
                      config = detail::SslConfig::from(ssl_options)](ProtocolFactory factory) mutable {
        return create_connection(loop, std::move(factory), host, port, ssl, std::move(connect), config.view());
      });
}

Coro<StreamPair> open_connection(std::string_view host, std::uint16_t port, const SslContext& ssl,
                                 StreamOptions options, SslOptions ssl_options) {
  return open_connection(get_running_loop(), host, port, ssl, std::move(options), ssl_options);
}

namespace {
// The streams' protocol for each accepted connection (the TLS layer is put in front of it by the TLS server).
// A missing callback or a bad limit throws here, at the start_server call.
ProtocolFactory tls_stream_factory(ClientConnected client_connected, std::size_t limit) {
  if (!client_connected) throw std::invalid_argument("start_server: no client_connected callback");
  detail::StreamReaderProtocol::check_limit(limit);
  // Owned by the factory, which the server keeps while it has connections: a connection's connection_made comes
  // only after its handshake, later than for plain TCP, and still finds the callback alive.
  auto cb = std::make_shared<ClientConnected>(std::move(client_connected));
  return [cb, limit]() -> std::unique_ptr<StreamProtocol> {
    return std::unique_ptr<StreamProtocol>(detail::StreamReaderProtocol::create_for_server(limit, cb.get()));
  };
}
}  // namespace

Server start_server(EventLoop& loop, ClientConnected client_connected, std::string_view host, std::uint16_t port,
                    const SslContext& ssl, StreamServerOptions options, SslOptions ssl_options) {
  detail::check_server_host_without_lookup(host, "start_server_async");
  return create_server(loop, tls_stream_factory(std::move(client_connected), options.limit), host, port, ssl,
                       std::move(options.server), ssl_options);
}

Future<Server> start_server_async(EventLoop& loop, ClientConnected client_connected, std::string_view host,
                                  std::uint16_t port, const SslContext& ssl, StreamServerOptions options,
                                  SslOptions ssl_options) {
  return create_server_async(loop, tls_stream_factory(std::move(client_connected), options.limit), host, port, ssl,
                             std::move(options.server), ssl_options);
}

}  // namespace tulipa
