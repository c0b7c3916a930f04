// tulipa_echo's streams style: one coroutine per connection, as asyncio_echo.py's streams peer and Asio's
// coroutine echo do: read what is there, write it back, drain.
//
// What a connection costs while it waits: the stream state, the task, and this coroutine's frame, whose
// biggest members are the awaiters of read() and drain() and one Bytes. The Bytes holds the chunk the transport
// read into (handed over without a copy) and gives it back to the pool at the end of each turn, so an idle
// connection holds no buffer.
#include "echo_streams.hpp"

#include <cerrno>
#include <system_error>

#include "tulipa/runner.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/task.hpp"

namespace echo_streams {

namespace {

Hooks hooks;

tulipa::Coro<void> echo(tulipa::StreamReader reader, tulipa::StreamWriter writer) {
  // No try/catch here: a connection reset ends the task with the std::system_error (the exception handler set in
  // start() drops those), and the frame stays small (a try block would add 8 bytes, which can cross into the
  // frame allocator's next 32-byte class; streams_test checks this shape's frame against its budget).
  for (bool first = true;; first = false) {
    tulipa::Bytes data = co_await reader.read(65536);
    if (data.empty()) break;
    if (hooks.on_read) hooks.on_read();
    writer.write(data);
    co_await writer.drain();
    // Counted once the connection has echoed its first request: tulipa_echo's "allocations after the last
    // connection" then leaves out the pools' warm-up (the first chunk each concurrent read takes from the heap).
    if (first && hooks.on_connection) hooks.on_connection();
  }
  writer.close();
}

}  // namespace

tulipa::Server start(tulipa::EventLoop& loop, std::uint16_t port, tulipa::ServerOptions options, Hooks h) {
  hooks = h;
  // A client that resets its connection ends that connection's task with a std::system_error: expected under a
  // load generator, not worth a report per connection. Only those are dropped: a connection's task ending with
  // a reset or a broken pipe. Everything else goes to the default handler, the server's own reports first (out of
  // descriptors, EMFILE: accepting pauses, and the operator must hear of it).
  loop.set_exception_handler([](tulipa::EventLoop& l, const tulipa::ErrorContext& ctx) {
    if (!ctx.task.empty() && ctx.exception) {
      try {
        std::rethrow_exception(ctx.exception);
      } catch (const std::system_error& e) {
        const int code = e.code().value();
        if (code == ECONNRESET || code == EPIPE || code == ETIMEDOUT) return;
      } catch (...) {
      }
    }
    l.default_exception_handler(ctx);
  });
  tulipa::StreamServerOptions so;
  so.server = options;
  return tulipa::start_server(loop, echo, "127.0.0.1", port, so);
}

void finish(tulipa::EventLoop& loop) { tulipa::cancel_all_tasks(loop); }

}  // namespace echo_streams
