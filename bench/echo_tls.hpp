// tulipa_echo's --tls CERT KEY mode (bench/echo_tls.cpp): the same echo servers, with TLS in front.
#pragma once

#include <cstdint>
#include <string>

#include "echo_streams.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/protocol.hpp"
#include "tulipa/server.hpp"

namespace echo_tls {

// The server's certificate chain and private key (PEM files), as given after --tls.
struct Files {
  std::string cert;
  std::string key;
};

// Listens on 127.0.0.1:port; every connection handshakes (TLS 1.2 or 1.3, OpenSSL's default choice) before it
// echoes. STYLE protocol: `factory`'s protocols get the decrypted bytes. STYLE streams (`streams` true): a
// coroutine per connection, read -> write -> drain, as echo_streams does over plain TCP; `factory` is unused.
// A certificate or key that cannot be loaded ends the program with status 2 and OpenSSL's reason on stderr.
// Shutting down is the plain servers': close, abort_clients, and echo_streams::finish for STYLE streams.
tulipa::Server start(tulipa::EventLoop& loop, std::uint16_t port, tulipa::ServerOptions options, const Files& files,
                     bool streams, tulipa::ProtocolFactory factory, echo_streams::Hooks hooks);

}  // namespace echo_tls
