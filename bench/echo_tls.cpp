// tulipa_echo --tls: the echo over TLS, for the side-by-side benchmark against Asio's asio::ssl echo
// (run.sh echo-tls). The servers are the plain ones with an SslContext: the protocol style goes through
// create_server(..., ssl), the streams style through start_server(..., ssl), so what the benchmark adds over the
// plain echo is the TLS layer (SslProtocol and OpenSSL), nothing else.
#include "echo_tls.hpp"

#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>

#include "tulipa/coro.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/tls.hpp"
#include "tulipa/tls_net.hpp"
#include "tulipa/tls_streams.hpp"

namespace echo_tls {

namespace {

echo_streams::Hooks hooks;

// As echo_streams' coroutine; over TLS a client that goes away without close_notify is an SslError (truncated)
// from the read, the TLS counterpart of a reset.
tulipa::Coro<void> echo(tulipa::StreamReader reader, tulipa::StreamWriter writer) {
  try {
    for (bool first = true;; first = false) {
      tulipa::Bytes data = co_await reader.read(65536);
      if (data.empty()) break;
      if (hooks.on_read) hooks.on_read();
      writer.write(data);
      co_await writer.drain();
      if (first && hooks.on_connection) hooks.on_connection();  // see echo_streams.cpp: leaves out pool warm-up
    }
  } catch (const std::system_error&) {
    // The client reset the connection: nothing to answer.
  } catch (const tulipa::SslError&) {
    // The client closed without close_notify (or broke the protocol): nothing to answer either.
  }
  writer.close();
}

tulipa::SslContext load(const Files& files) {
  try {
    return tulipa::SslContext::server(files.cert, files.key);
  } catch (const tulipa::SslError& e) {
    std::fprintf(stderr, "tulipa_echo: --tls %s %s: %s\n", files.cert.c_str(), files.key.c_str(), e.what());
    std::exit(2);
  }
}

}  // namespace

tulipa::Server start(tulipa::EventLoop& loop, std::uint16_t port, tulipa::ServerOptions options, const Files& files,
                     bool streams, tulipa::ProtocolFactory factory, echo_streams::Hooks h) {
  tulipa::SslContext ssl = load(files);  // the servers keep it alive (each connection holds a reference)
  if (!streams) return tulipa::create_server(loop, std::move(factory), "127.0.0.1", port, ssl, options);
  hooks = h;
  tulipa::StreamServerOptions so;
  so.server = options;
  return tulipa::start_server(loop, echo, "127.0.0.1", port, ssl, so);
}

}  // namespace echo_tls
