// Chooses the stream transport by the loop's backend (stream_transport.hpp).
#include "net/stream_transport.hpp"

#include "net/socket_transport.hpp"
#include "net/uring_socket_transport.hpp"

namespace tulipa::detail {

Transport* start_stream_transport(EventLoop& loop, int fd, std::unique_ptr<StreamProtocol> protocol,
                                  ServerCore* server) {
#if TULIPA_HAVE_URING
  if (UringOps* ops = uring_ops(loop)) {
    auto* t = UringSocketTransport::create(loop, *ops, fd, std::move(protocol), server);
    t->start();
    return t;
  }
#endif
  auto* t = SocketTransport::create(loop, fd, std::move(protocol), server);
  t->start();
  return t;
}

}  // namespace tulipa::detail
