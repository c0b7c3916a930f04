// The handler's side of a streamed request body (BodyReader, message.hpp); the connection feeds it
// (Connection::feed_body, connection.cpp).
#include <utility>

#include "server_state.hpp"

namespace tulipa::http {

Coro<std::string_view> BodyReader::read() {
  detail::Exchange::Body& b = ex_->body;
  if (b.handed) {  // the previous piece is done with
    b.buffered.erase(0, std::exchange(b.handed, 0));
    if (ex_->conn) ex_->conn->body_consumed();
  }
  while (b.buffered.empty() && b.open && !b.error) {
    b.waiter = Future<void>(ex_->state->loop);
    Future<void> wait = b.waiter;
    co_await wait;
  }
  if (b.error) std::rethrow_exception(b.error);
  b.handed = b.buffered.size();
  co_return std::string_view(b.buffered);
}

Coro<std::string> BodyReader::read_all() {
  std::string all;
  for (;;) {
    const std::string_view piece = co_await read();
    if (piece.empty()) co_return all;
    all.append(piece);
  }
}

std::uint64_t BodyReader::received() const noexcept { return ex_->body.received; }
bool BodyReader::at_end() const noexcept { return !ex_->body.open && ex_->body.buffered.size() == ex_->body.handed; }
std::size_t BodyReader::buffered() const noexcept { return ex_->body.buffered.size() - ex_->body.handed; }

}  // namespace tulipa::http
