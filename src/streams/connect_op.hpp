// open_connection's shared state and its completion callback (src/streams and src/tls only): every open_connection
// variant (TCP, Unix, TLS) starts its connection through start_cancellable, so that cancelling the awaiting task
// cancels the pending lookup, connect or (TLS) handshake whatever the transport.
#pragma once

#include <exception>
#include <memory>

#include "streams/stream_connection.hpp"
#include "tulipa/net.hpp"
#include "tulipa/streams.hpp"

namespace tulipa::detail {

// What the connect callback and the awaiter share: the callback may come after a cancelled awaiter is gone.
struct ConnectOp {
  OpenConnection* waiter = nullptr;  // null once the wait was cancelled or abandoned
  StreamConnection* conn = nullptr;  // one reference, taken in the factory
  std::exception_ptr error;
  std::size_t limit = stream_default_limit;
  ConnectHandle connecting;          // cancelled with the wait, so that an abandoned connect stops at once
  bool done = false;
  ~ConnectOp() {
    if (conn) conn->release();  // not handed out: closes the connection
  }
};

// The callback handed to OpenConnection's start function: a named type, so that the start function can find the
// op in it (std::function::target) and keep the ConnectHandle there.
struct ConnectDone {
  std::shared_ptr<ConnectOp> op;
  void operator()(Transport* t, std::exception_ptr error) const {
    op->done = true;
    op->error = std::move(error);
    if (t) {
      // Our factory made the protocol: it is the stream state (over TLS too: the TLS transport's protocol is it).
      // connection_made ran already.
      op->conn = static_cast<StreamConnection*>(&t->get_protocol());
      op->conn->retain();
    }
    if (op->waiter) op->waiter->ready();
    // Nobody waits any more (cancelled): the op's destructor releases, and so closes, the connection.
  }
};

// Starts a connection for `done` with `start` (ConnectHandle(ConnectCallback)) and, when `done` is
// OpenConnection's own, lets the op cancel it.
template <class Start>
void start_cancellable(ConnectCallback done, Start start) {
  const ConnectDone* ours = done.target<ConnectDone>();
  std::shared_ptr<ConnectOp> op = ours ? ours->op : nullptr;
  ConnectHandle h = start(std::move(done));
  if (op) op->connecting = std::move(h);
}

}  // namespace tulipa::detail
