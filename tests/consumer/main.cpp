// A program outside the tulipa tree, built against an installed tulipa by run_consumer.sh (through find_package
// and through pkg-config) with -Wall -Wextra -Wpedantic -Werror: the umbrella header alone gives the whole core,
// callbacks and coroutines. The coroutine part uses the shapes the API offers so that user code stays free of
// warnings and of g++ 12's co_await pitfalls: the running-loop overloads (no loop passed anywhere), the
// SubprocessOptions setters (no designated initialisers, so no -Wmissing-field-initializers) and the arguments of
// create_subprocess_exec one by one (no braced list inside a co_await).
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
  auto [reader, writer] = co_await tulipa::open_connection("127.0.0.1", port);
  writer.write(text + "\n");
  tulipa::Bytes reply =
      co_await tulipa::timeout(5s, [&]() -> tulipa::Coro<tulipa::Bytes> { co_return co_await reader.readline(); });
  writer.close();
  co_await writer.wait_closed();
  co_return reply.str();
}

tulipa::Coro<int> coroutines() {
  tulipa::Server server = tulipa::start_server(echo, "127.0.0.1", 0);
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
  if (replies != std::vector<std::string>{"a\n", "b\n"}) co_return 1;

  // A child whose stdout is a pipe, its arguments one by one, and blocking work on the default executor.
  const auto options =
      tulipa::SubprocessOptions().with_stdout(tulipa::Stdio::pipe()).with_stderr(tulipa::Stdio::devnull());
  tulipa::Process p = co_await tulipa::create_subprocess_exec(options, "printf", "%s-%s", "x", std::string("y"));
  auto [out, err] = co_await p.communicate();
  const int doubled = co_await tulipa::to_thread([](int n) { return 2 * n; }, 21);
  co_return out.str() == "x-y" && p.returncode() == 0 && doubled == 42 ? 0 : 2;
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
    std::fputs("tulipa consumer: the streams echo, the subprocess or to_thread failed\n", stderr);
    return 1;
  }
  std::printf("tulipa consumer (C++ %ld): ok\n", static_cast<long>(__cplusplus));
  return 0;
}
