// The stream transport a loop's backend calls for: the completion transport (uring_socket_transport.hpp) on a loop
// whose io_uring offers operations, the readiness transport (socket_transport.hpp) everywhere else.
#pragma once

#include <memory>

#include "tulipa/loop.hpp"
#include "tulipa/protocol.hpp"
#include "tulipa/transport.hpp"

namespace tulipa::detail {

struct ServerCore;

// Takes ownership of the connected non-blocking socket `fd` and of `protocol` (not null), wraps them and starts the
// transport (connection_made, then reading). `server` (may be null) is told when the connection ends.
Transport* start_stream_transport(EventLoop& loop, int fd, std::unique_ptr<StreamProtocol> protocol,
                                  ServerCore* server);

}  // namespace tulipa::detail
