// Streams over TLS: open_connection and start_server with an SslContext (asyncio's ssl= argument of
// open_connection/start_server). The reader and writer work as over plain TCP (streams.hpp), with TLS's rules
// (tls_net.hpp): the handshake completes before open_connection returns or the server's coroutine starts,
// write_eof() is not available (TLS has no half-close here: close() sends close_notify), and a stream that ends
// without close_notify raises SslError(Kind::truncated) from the reads instead of reading as EOF.
#pragma once

#include <cstdint>
#include <string_view>

#include "tulipa/streams.hpp"
#include "tulipa/tls.hpp"
#include "tulipa/tls_net.hpp"

namespace tulipa {

// `ssl` is a client context; the certificate is checked against ssl_options.server_hostname, by default `host`.
// Handshake failures are thrown by the co_await as SslError. Cancelling the awaiting task while the name is looked
// up or the TCP connect is pending stops it there (the socket is closed at once); cancelled during the handshake,
// the connection is aborted (the socket closes on the next loop pass). Either way the task ends cancelled.
// (SslOptions is trivially copyable so that a temporary one is safe in a co_await operand; see tls_net.hpp.)
// A coroutine that awaits the TLS create_connection (tls_net.hpp), as the plain open_connection awaits the plain one.
Coro<StreamPair> open_connection(EventLoop& loop, std::string_view host, std::uint16_t port, const SslContext& ssl,
                                 StreamOptions options = {}, SslOptions ssl_options = {});

// `ssl` is a server context. Connections whose handshake fails never start a coroutine. Hosts as the plain
// start_server takes them (numeric, "" or "localhost"; other names throw std::invalid_argument pointing to
// start_server_async).
Server start_server(EventLoop& loop, ClientConnected client_connected, std::string_view host, std::uint16_t port,
                    const SslContext& ssl, StreamServerOptions options = {}, SslOptions ssl_options = {});
// The same for any host name, awaitable, as the plain start_server_async (streams.hpp): GaiError out of the Future
// when the name does not resolve, nothing bound when it is cancelled during the lookup.
Future<Server> start_server_async(EventLoop& loop, ClientConnected client_connected, std::string_view host,
                                  std::uint16_t port, const SslContext& ssl, StreamServerOptions options = {},
                                  SslOptions ssl_options = {});

// The same on the running loop (std::runtime_error when none runs on this thread).
Coro<StreamPair> open_connection(std::string_view host, std::uint16_t port, const SslContext& ssl,
                                 StreamOptions options = {}, SslOptions ssl_options = {});
inline Server start_server(ClientConnected client_connected, std::string_view host, std::uint16_t port,
                           const SslContext& ssl, StreamServerOptions options = {}, SslOptions ssl_options = {}) {
  return start_server(get_running_loop(), std::move(client_connected), host, port, ssl, std::move(options),
                      ssl_options);
}
inline Future<Server> start_server_async(ClientConnected client_connected, std::string_view host, std::uint16_t port,
                                         const SslContext& ssl, StreamServerOptions options = {},
                                         SslOptions ssl_options = {}) {
  return start_server_async(get_running_loop(), std::move(client_connected), host, port, ssl, std::move(options),
                            ssl_options);
}

}  // namespace tulipa
