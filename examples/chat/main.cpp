// tulipa_chat [--host HOST] [--port PORT]   (or positionally: tulipa_chat [HOST [PORT]])
// The line chat server (chat.hpp). Defaults: 127.0.0.1:7070. Connect with `nc 127.0.0.1 7070`.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "chat.hpp"
#include "tulipa/loop.hpp"

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  long port = 7070;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "tulipa_chat: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--host") {
      host = value();
    } else if (a == "--port") {
      port = std::strtol(value().c_str(), nullptr, 10);
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: tulipa_chat [--host HOST] [--port PORT]\n");
      return 0;
    } else if (positional == 0 && !a.starts_with("-")) {
      host = a;
      ++positional;
    } else if (positional == 1 && !a.starts_with("-")) {
      port = std::strtol(a.c_str(), nullptr, 10);
      ++positional;
    } else {
      std::fprintf(stderr, "tulipa_chat: unexpected argument '%s' (usage: tulipa_chat [--host HOST] [--port PORT])\n",
                   a.c_str());
      return 2;
    }
  }
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "tulipa_chat: bad port %ld\n", port);
    return 2;
  }

  tulipa::EventLoop loop;
  chat::ChatRoom room;
  tulipa::Server server;
  try {
    server = tulipa::create_server(loop, room.factory(), host, static_cast<std::uint16_t>(port));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa_chat: cannot listen on %s:%ld: %s\n", host.c_str(), port, e.what());
    return 1;
  }
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  for (const auto& a : server.sockets()) std::printf("tulipa chat listening on %s\n", a.to_string().c_str());
  std::printf("connect with: nc %s %ld   (Ctrl-C stops the server)\n", host.c_str(),
              static_cast<long>(server.sockets().at(0).port()));
  std::fflush(stdout);
  loop.run_forever();

  // Say goodbye and flush; a client that does not read is cut off after a second.
  server.close();
  room.broadcast("* the server is shutting down\n", nullptr);
  server.close_clients();
  bool closed = false;
  server.wait_closed([&] { closed = true; });
  tulipa::TimerHandle cut = loop.call_later(std::chrono::seconds(1), [&] { server.abort_clients(); });
  while (!closed) loop.run_once();
  cut.cancel();
  std::printf("tulipa chat stopped\n");
  return 0;
}
