// open_connection: create_connection with a StreamConnection as the protocol, awaited as a leaf awaiter.
#include <ostream>
#include <stdexcept>

#include "streams/connect_op.hpp"
#include "streams/stream_connection.hpp"
#include "tulipa/streams.hpp"

namespace tulipa {

OpenConnection::OpenConnection(std::function<void(ConnectCallback)> start, std::size_t limit) noexcept
    : start_(std::move(start)), limit_(limit) {}

OpenConnection::~OpenConnection() {
  if (op_) op_->waiter = nullptr;
}

bool OpenConnection::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  op_ = std::make_shared<detail::ConnectOp>();
  op_->waiter = this;
  op_->limit = limit_;
  try {
    start_(detail::ConnectDone{op_});
  } catch (...) {
    // Bad host name & co: reported by the co_await, on the task's next step (we are parked already).
    op_->done = true;
    op_->error = std::current_exception();
    wake();
  }
  return true;
}

Suspension::Cancel OpenConnection::on_cancel() noexcept {
  op_->waiter = nullptr;
  op_->connecting.cancel();  // a lookup or connect still pending stops here: no connection is made at all
  return Cancel::detached;
}

StreamPair OpenConnection::await_resume() {
  check_cancelled();
  if (op_->error) std::rethrow_exception(op_->error);
  detail::StreamConnection* c = std::exchange(op_->conn, nullptr);
  c->retain();  // two handles: the op's reference and this one
  return StreamPair{detail::StreamAccess::reader(c), detail::StreamAccess::writer(c)};
}

void OpenConnection::describe(std::ostream& os) const { os << "open_connection()"; }

OpenConnection open_connection(EventLoop& loop, std::string_view host, std::uint16_t port, StreamOptions options) {
  std::size_t limit = options.limit;
  return OpenConnection(
      [&loop, host = std::string(host), port, limit, connect = options.connect](ConnectCallback done) mutable {
        detail::start_cancellable(std::move(done), [&](ConnectCallback d) {
          return create_connection(
              loop, [limit]() -> std::unique_ptr<StreamProtocol> {
                return std::unique_ptr<StreamProtocol>(detail::StreamConnection::create(limit, true));
              },
              host, port, std::move(d), connect);
        });
      },
      limit);
}

OpenConnection open_unix_connection(EventLoop& loop, std::string_view path, std::size_t limit) {
  return OpenConnection(
      [&loop, path = std::string(path), limit](ConnectCallback done) mutable {
        detail::start_cancellable(std::move(done), [&](ConnectCallback d) {
          return create_unix_connection(
              loop, [limit]() -> std::unique_ptr<StreamProtocol> {
                return std::unique_ptr<StreamProtocol>(detail::StreamConnection::create(limit, true));
              },
              path, std::move(d));
        });
      },
      limit);
}

}  // namespace tulipa
