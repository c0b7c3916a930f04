// What every open_connection (TCP, Unix, TLS) is, as in asyncio's streams.py: a coroutine that awaits
// create_connection with the streams' protocol (a StreamReaderProtocol) and returns a reader and a writer over it.
#pragma once

#include <cstddef>
#include <memory>

#include "streams/stream_reader_protocol.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/future.hpp"
#include "tulipa/net.hpp"
#include "tulipa/streams.hpp"

namespace tulipa::detail {

// The connection while nobody holds a handle on it. Cancelling the awaiting task cancels `connecting`, which stops
// the attempt wherever it is (lookup, connect, handshake). If the coroutine's frame goes before it handed the
// connection out (the task was torn down), the attempt is cancelled, or the connection that came up is closed.
class UnclaimedConnection {
 public:
  explicit UnclaimedConnection(Future<Transport*>& connecting) noexcept : connecting_(connecting) {}
  UnclaimedConnection(const UnclaimedConnection&) = delete;
  UnclaimedConnection& operator=(const UnclaimedConnection&) = delete;
  ~UnclaimedConnection() {
    if (claimed_) return;
    if (!connecting_.done()) {
      connecting_.cancel();
    } else if (!connecting_.cancelled() && !connecting_.exception()) {
      connecting_.result()->close();
    }
  }
  // The reader and writer: the transport's protocol is the StreamReaderProtocol the factory made (over TLS too: the
  // TLS transport's protocol is the application's).
  StreamPair claim(Transport* t) noexcept {
    claimed_ = true;
    auto* c = static_cast<StreamReaderProtocol*>(&t->get_protocol());
    c->retain();
    c->retain();
    return StreamPair{StreamAccess::reader(c), StreamAccess::writer(c)};
  }

 private:
  Future<Transport*>& connecting_;
  bool claimed_ = false;
};

// `connect(factory)` starts the connection and returns create_connection's future; it runs when the coroutine is
// first awaited, as asyncio's open_connection does nothing before it is awaited.
template <class Connect>
Coro<StreamPair> open_stream(std::size_t limit, Connect connect) {
  StreamReaderProtocol::check_limit(limit);
  Future<Transport*> connecting = connect([limit]() -> std::unique_ptr<StreamProtocol> {
    return std::unique_ptr<StreamProtocol>(StreamReaderProtocol::create(limit, true));
  });
  UnclaimedConnection unclaimed(connecting);
  Transport* transport = co_await connecting;
  co_return unclaimed.claim(transport);
}

}  // namespace tulipa::detail
