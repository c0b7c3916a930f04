// start_server: create_server whose protocol is a StreamReaderProtocol that starts the user's coroutine as a task.
#include <memory>
#include <stdexcept>
#include <string>

#include "net/resolve.hpp"
#include "streams/server_host.hpp"
#include "streams/stream_reader_protocol.hpp"
#include "tulipa/streams.hpp"

namespace tulipa {

namespace detail {
void check_server_host_without_lookup(std::string_view host, std::string_view async_form) {
  if (host == "localhost" || numeric_addresses(host, 0, /*passive=*/true)) return;
  throw std::invalid_argument("start_server: cannot resolve host name '" + std::string(host) +
                              "' without blocking the loop: use " + std::string(async_form));
}
}  // namespace detail

namespace {
ProtocolFactory stream_factory(ClientConnected client_connected, std::size_t limit) {
  if (!client_connected) throw std::invalid_argument("start_server: no client_connected callback");
  // Shared by the factory's copies; each connection borrows it only until its connection_made.
  auto cb = std::make_shared<ClientConnected>(std::move(client_connected));
  detail::StreamReaderProtocol::check_limit(limit);  // bad limits fail here, not at the first connection
  return [cb, limit]() -> std::unique_ptr<StreamProtocol> {
    return std::unique_ptr<StreamProtocol>(detail::StreamReaderProtocol::create_for_server(limit, cb.get()));
  };
}
}  // namespace

Server start_server(EventLoop& loop, ClientConnected client_connected, std::string_view host, std::uint16_t port,
                    StreamServerOptions options) {
  detail::check_server_host_without_lookup(host, "start_server_async");
  return create_server(loop, stream_factory(std::move(client_connected), options.limit), host, port, options.server);
}

Future<Server> start_server_async(EventLoop& loop, ClientConnected client_connected, std::string_view host,
                                  std::uint16_t port, StreamServerOptions options) {
  // The factory is made first: a missing callback or a bad limit throws here, not out of the future.
  return create_server_async(loop, stream_factory(std::move(client_connected), options.limit), host, port,
                             std::move(options.server));
}

Server start_unix_server(EventLoop& loop, ClientConnected client_connected, std::string_view path,
                         StreamServerOptions options) {
  return create_unix_server(loop, stream_factory(std::move(client_connected), options.limit), path, options.server);
}

}  // namespace tulipa
