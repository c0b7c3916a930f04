// tulipa_echo's streams style: one coroutine per connection, as asyncio_echo.py's streams peer and Asio's
// coroutine echo do: read what is there, write it back, drain.
//
// What a connection costs while it waits: the stream state, the task, and this coroutine's frame, whose
// biggest members are the awaiters of read() and drain() and one Bytes. The Bytes holds the chunk the transport
// read into (handed over without a copy) and gives it back to the pool at the end of each turn, so an idle
// connection holds no buffer.
#include "echo_streams.hpp"

#include <system_error>

#include "tulipa/runner.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/task.hpp"

namespace echo_streams {

namespace {

Hooks hooks;

tulipa::Coro<void> echo(tulipa::StreamReader reader, tulipa::StreamWriter writer) {
  try {
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
  } catch (const std::system_error&) {
    // The client reset the connection: nothing to answer.
  }
  writer.close();
}

}  // namespace

tulipa::Server start(tulipa::EventLoop& loop, std::uint16_t port, tulipa::ServerOptions options, Hooks h) {
  hooks = h;
  tulipa::StreamServerOptions so;
  so.server = options;
  return tulipa::start_server(loop, echo, "127.0.0.1", port, so);
}

void finish(tulipa::EventLoop& loop) { tulipa::cancel_all_tasks(loop); }

}  // namespace echo_streams
