// The streams style of tulipa_echo (bench/echo_streams.cpp): a coroutine per connection.
#pragma once

#include <cstdint>

#include "tulipa/loop.hpp"
#include "tulipa/server.hpp"

namespace echo_streams {

// Counting hooks of tulipa_echo (called on the loop's thread): a connection arrived / a request was read.
struct Hooks {
  void (*on_connection)() = nullptr;
  void (*on_read)() = nullptr;
};

// Listens on 127.0.0.1:port; each connection runs read(65536) -> write -> drain until EOF.
tulipa::Server start(tulipa::EventLoop& loop, std::uint16_t port, tulipa::ServerOptions options, Hooks hooks);
// After the server closed and its clients were aborted: lets the handlers see their EOF and end.
void finish(tulipa::EventLoop& loop);

}  // namespace echo_streams
