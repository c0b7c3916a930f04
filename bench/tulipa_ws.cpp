// tulipa_ws PORT [--deflate] [--coro] [--count-allocs]: the WebSocket echo server of ../shared/bench/run.sh ws and
// ws-idle. Echoes every message at / (callback form: the received message's pooled buffer is sent back as it is),
// prints "ready" once listening on 127.0.0.1:PORT, exits on SIGTERM/SIGINT. Deflate is off unless --deflate (the
// benchmark's figures are for deflate off); --coro serves with the coroutine form (receive/send per message).
// --count-allocs counts operator new and prints, at exit, the allocations per message after the last connection
// was accepted (steady state: 0 is the target).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>

#include "count_allocs.hpp"
#include "tulipa/http/websocket.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

namespace {

using count_allocs::allocations;
using count_allocs::counting;
std::uint64_t messages = 0, allocs_at_open = 0, messages_at_open = 0, allocs_at_last_message = 0;

struct Echo final : tulipa::websocket::Handler {
  void on_open(tulipa::websocket::Connection&) override {
    allocs_at_open = allocations;
    messages_at_open = messages;
  }
  void on_message(tulipa::websocket::Connection& ws, tulipa::websocket::Message&& m) override {
    ++messages;
    ws.send(m.data, m.text);
    allocs_at_last_message = allocations;
  }
};

tulipa::Coro<void> coro_echo(tulipa::websocket::WebSocket ws, std::string) {
  try {
    for (;;) {
      tulipa::websocket::Message m = co_await ws.receive();
      ++messages;
      co_await ws.send(m.data, m.text);
      allocs_at_last_message = allocations;
    }
  } catch (const tulipa::websocket::ConnectionClosed&) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PORT [--deflate] [--coro] [--count-allocs]\n", argv[0]);
    return 2;
  }
  int port = std::atoi(argv[1]);
  bool deflate = false, coro = false;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--deflate") == 0) deflate = true;
    if (std::strcmp(argv[i], "--coro") == 0) coro = true;
    if (std::strcmp(argv[i], "--count-allocs") == 0) counting = true;
  }
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "tulipa_ws: bad port '%s'\n", argv[1]);
    return 2;
  }
  tulipa::EventLoop loop;
  tulipa::websocket::Options options;
  options.deflate.enabled = deflate;
  tulipa::ServerOptions server_options;
  server_options.backlog = 4096;
  tulipa::websocket::HandlerFactory factory =
      coro ? tulipa::websocket::coroutine_handler(loop, coro_echo)
           : tulipa::websocket::HandlerFactory(
                 [](const tulipa::websocket::UpgradeRequest&) { return std::make_unique<Echo>(); });
  std::optional<tulipa::Server> server;
  try {
    server.emplace(tulipa::websocket::serve(loop, factory, "127.0.0.1", static_cast<std::uint16_t>(port), options,
                                            server_options));
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "tulipa_ws: %s\n", e.what());
    return 1;
  }
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  std::puts("ready");
  std::fflush(stdout);
  loop.run_forever();
  if (counting) {
    std::uint64_t n = messages - messages_at_open;
    std::fprintf(stderr, "tulipa_ws: %llu allocations in %llu messages after the last connection (%.4f per message)\n",
                 static_cast<unsigned long long>(allocs_at_last_message - allocs_at_open),
                 static_cast<unsigned long long>(n),
                 n ? static_cast<double>(allocs_at_last_message - allocs_at_open) / static_cast<double>(n) : 0.0);
  }
  server->close();
  server->abort_clients();
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  return 0;
}
