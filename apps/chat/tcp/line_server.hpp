// TCP (and TLS) line clients of the chat, in tulipa's streams style: start_server runs serve_line_client as a
// task per connection; it reads, frames lines (core/line_framer.hpp) and hands them to the hub, which answers
// through LineClient (the Client of core/client.hpp over a StreamWriter).
//
// Fairness: a client's lines are handled at most Limits::lines_per_pass at a time; then the task yields to the
// loop (sleep(0)), so a client that sends 64 KiB of short lines in one read delays the others by a few lines, not
// by all of them. Flood control waits in the same task (Hub::pace): a flooder stops being read, the others are not.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "core/hub.hpp"
#include "tulipa/server.hpp"
#include "tulipa/streams.hpp"

namespace tulipa {
class SslContext;
}

namespace chat {

// Serves one connection until it ends (EOF, error, kicked, /quit).
tulipa::Coro<void> serve_line_client(Hub& hub, tulipa::StreamReader reader, tulipa::StreamWriter writer);

// Listens on host:port (numeric hosts, "" or "localhost"; binding errors throw std::system_error), over TLS when
// `tls` is given; with `reuse_port`, beside the other loops' listeners on the same port (--loops). The hub must
// outlive the server and its connections.
tulipa::Server start_line_server(tulipa::EventLoop& loop, Hub& hub, std::string_view host, std::uint16_t port,
                                 const tulipa::SslContext* tls = nullptr, bool reuse_port = false);

// Closes `writer`'s connection after its buffered data, and aborts it if that takes longer than `grace` (a peer
// that stopped reading).
void close_with_grace(tulipa::EventLoop& loop, tulipa::StreamWriter writer, tulipa::Duration grace);

}  // namespace chat
