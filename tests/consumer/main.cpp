// A program outside the tulipa tree, built against an installed tulipa by run_consumer.sh (through find_package
// and through pkg-config): the umbrella header alone gives the whole core, callbacks and coroutines.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tulipa/tulipa.hpp"

using namespace std::chrono_literals;

namespace {

tulipa::Coro<void> echo(tulipa::StreamReader reader, tulipa::StreamWriter writer) {
  for (;;) {
    tulipa::Bytes line = co_await reader.readline();
    if (line.empty()) break;
    writer.write(line);
    co_await writer.drain();
  }
  writer.close();
}

tulipa::Coro<std::string> ask(std::uint16_t port, std::string text) {
  auto [reader, writer] = co_await tulipa::open_connection(tulipa::get_running_loop(), "127.0.0.1", port);
  writer.write(text + "\n");
  tulipa::Bytes reply =
      co_await tulipa::timeout(5s, [&]() -> tulipa::Coro<tulipa::Bytes> { co_return co_await reader.readline(); });
  writer.close();
  co_await writer.wait_closed();
  co_return reply.str();
}

tulipa::Coro<int> coroutines() {
  tulipa::Server server = tulipa::start_server(tulipa::get_running_loop(), echo, "127.0.0.1", 0);
  std::uint16_t port = server.sockets().at(0).port();
  std::vector<std::string> replies(2);
  co_await tulipa::task_group([&](tulipa::TaskGroup& tg) -> tulipa::Coro<void> {
    tg.create_task([](std::string* out, std::uint16_t p) -> tulipa::Coro<void> { *out = co_await ask(p, "a"); }(
                                                             &replies[0], port));
    tg.create_task([](std::string* out, std::uint16_t p) -> tulipa::Coro<void> { *out = co_await ask(p, "b"); }(
                                                             &replies[1], port));
    co_return;
  });
  server.close();
  co_return replies == std::vector<std::string>{"a\n", "b\n"} ? 0 : 1;
}

int callbacks() {
  tulipa::EventLoop loop;
  std::vector<int> order;
  loop.call_soon([&] {
    order.push_back(1);
    loop.call_soon([&] {
      order.push_back(2);
      loop.call_later(1ms, [&] {
        order.push_back(3);
        loop.stop();
      });
    });
  });
  loop.run_forever();
  loop.close();
  return order == std::vector<int>{1, 2, 3} ? 0 : 1;
}

}  // namespace

int main() {
  if (callbacks() != 0) {
    std::fputs("tulipa consumer: callbacks did not run in the order 1 2 3\n", stderr);
    return 1;
  }
  if (tulipa::run(coroutines()) != 0) {
    std::fputs("tulipa consumer: the streams echo did not echo\n", stderr);
    return 1;
  }
  std::printf("tulipa consumer (C++ %ld): ok\n", static_cast<long>(__cplusplus));
  return 0;
}
