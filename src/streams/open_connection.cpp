// open_connection: a coroutine awaiting create_connection (src/streams/open_stream.hpp).
#include <string>
#include <utility>

#include "streams/open_stream.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/streams.hpp"

namespace tulipa {

Coro<StreamPair> open_connection(EventLoop& loop, std::string_view host, std::uint16_t port, StreamOptions options) {
  return detail::open_stream(options.limit, [&loop, host = std::string(host), port,
                                             connect = std::move(options.connect)](ProtocolFactory factory) mutable {
    return create_connection(loop, std::move(factory), host, port, std::move(connect));
  });
}

Coro<StreamPair> open_connection(std::string_view host, std::uint16_t port, StreamOptions options) {
  return open_connection(get_running_loop(), host, port, std::move(options));
}

Coro<StreamPair> open_unix_connection(EventLoop& loop, std::string_view path, std::size_t limit) {
  return detail::open_stream(limit, [&loop, path = std::string(path)](ProtocolFactory factory) {
    return create_unix_connection(loop, std::move(factory), path);
  });
}

Coro<StreamPair> open_unix_connection(std::string_view path, std::size_t limit) {
  return open_unix_connection(get_running_loop(), path, limit);
}

}  // namespace tulipa
