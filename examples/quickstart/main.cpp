// README's quick start (the README shows this file; tests/readme_test.sh checks that it still does, and the
// release suite runs it): a streams echo server and three clients in one program, on coroutines.
#include <cstdio>
#include <string>

#include "tulipa/tulipa.hpp"

using namespace std::chrono_literals;
using tulipa::Coro;

// The server runs this as a task per connection: echo each line until the client closes.
Coro<void> echo(tulipa::StreamReader reader, tulipa::StreamWriter writer) {
  for (;;) {
    tulipa::Bytes line = co_await reader.readline();
    if (line.empty()) break;  // EOF
    writer.write(line);
    co_await writer.drain();  // waits only while the socket's write buffer is full
  }
  writer.close();
}

// A client: connect, send a line, read the echo with a deadline (TimeoutError after 1 s).
Coro<void> client(std::uint16_t port, int n) {
  auto [reader, writer] = co_await tulipa::open_connection(tulipa::get_running_loop(), "127.0.0.1", port);
  writer.write("hello from client " + std::to_string(n) + "\n");
  tulipa::Bytes reply =
      co_await tulipa::timeout(1s, [&]() -> Coro<tulipa::Bytes> { co_return co_await reader.readline(); });
  std::printf("client %d got: %s", n, reply.str().c_str());
  writer.close();
  co_await writer.wait_closed();
}

Coro<int> amain() {
  tulipa::Server server = tulipa::start_server(tulipa::get_running_loop(), echo, "127.0.0.1", 0);
  std::uint16_t port = server.sockets().at(0).port();
  // Structured concurrency: task_group returns when the three clients are done; if one fails, the others are
  // cancelled and its error comes out of task_group (in an ExceptionGroup).
  co_await tulipa::task_group([&](tulipa::TaskGroup& tg) -> Coro<void> {
    for (int n = 1; n <= 3; ++n) tg.create_task(client(port, n));
    co_return;
  });
  server.close();
  co_return 0;
}

int main() { return tulipa::run(amain()); }
