// TLS over transports: create_server / create_connection with an SslContext, start_tls, and SslTransport (what a
// protocol sees of a TLS connection). asyncio's sslproto, as a layer: the TLS layer is the socket transport's
// protocol and presents itself to the application's protocol as a Transport, so Protocol, BufferedProtocol and
// everything built on them (streams) run over TLS unchanged.
//
// Order of calls to the application's protocol: connection_made only once the handshake succeeded (the protocol
// never hears of a connection whose handshake failed); then as in protocol.hpp. eof_received means the peer sent
// close_notify (a clean end): returning false closes the connection (our close_notify goes out), true keeps it
// open for writing (TLS 1.3 half-close). A stream that ends without close_notify is not a clean end: the protocol
// gets connection_lost(SslError with Kind::truncated) instead of eof_received.
//
// Flow control: the application's pause_writing/resume_writing follow the socket transport's write buffer (the
// limits set on the TLS transport are the socket's). A protocol that pauses reading stops decryption; once the TLS
// layer's incoming buffer (SslOptions::incoming_buffer) is full the socket is not read either, so the peer's
// writer is paused by TCP.
//
// Closing: close() sends close_notify and waits up to shutdown_timeout for the peer's, then closes the socket
// (after flushing). abort() closes at once. write_eof() is not available (can_write_eof() is false), as in asyncio.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "tulipa/clock.hpp"
#include "tulipa/net.hpp"
#include "tulipa/tls.hpp"
#include "tulipa/transport.hpp"

namespace tulipa {

class EventLoop;

// Every field is copied by the call that takes the options: what server_hostname and session point to need only
// live until that call returns. The struct is trivially copyable on purpose, so that an SslOptions{...} written
// inside `co_await open_connection(...)` survives g++ 12 (docs/coroutines.md, "g++ 12").
struct SslOptions {
  // Client: the name to verify the certificate against and to send as SNI. Empty: the host connected to.
  std::string_view server_hostname{};
  // asyncio's defaults (SSL_HANDSHAKE_TIMEOUT, SSL_SHUTDOWN_TIMEOUT). On expiry the connection is aborted with
  // SslError(Kind::timeout).
  Duration handshake_timeout = std::chrono::seconds(60);
  Duration shutdown_timeout = std::chrono::seconds(30);
  // Client: a session to resume (else the context's session cache is asked, when enabled). Null: none.
  const SslSession* session = nullptr;
  // The TLS layer's two ciphertext buffers' capacities, per connection. Their memory is taken only while they hold
  // bytes (an idle connection holds neither: 14 KiB in all on a server, measured). The incoming one bounds how
  // much the peer can send while the protocol does not read.
  std::size_t incoming_buffer = 32 * 1024;
  std::size_t outgoing_buffer = 32 * 1024;
};
static_assert(std::is_trivially_copyable_v<SslOptions>);

// The transport a protocol gets on a TLS connection: a Transport, plus what the handshake settled. Find it with
// as_ssl_transport(transport). Valid as long as the Transport is (until connection_lost returns).
class SslTransport : public Transport {
 public:
  virtual std::string_view alpn_protocol() const noexcept = 0;  // empty when none was agreed
  // Server: the name the client asked for (SNI); client: the name it sent. Empty when none.
  virtual std::string_view server_name() const noexcept = 0;
  virtual std::string_view tls_version() const noexcept = 0;  // "TLSv1.3"
  virtual std::string_view cipher() const noexcept = 0;
  virtual bool session_reused() const noexcept = 0;
  // The session, to resume it on a later connection (TLS 1.3: once the server's tickets arrived, i.e. after the
  // first data was read).
  virtual SslSession session() const = 0;
  // The peer certificate's subject on one line ("O = tulipa tests, CN = localhost"), empty when it sent none.
  virtual std::string peer_certificate_subject() const = 0;

 protected:
  ~SslTransport() = default;
};

// The SslTransport behind `transport`, or null when it is not a TLS one.
SslTransport* as_ssl_transport(Transport& transport) noexcept;

// create_server with TLS: each accepted connection handshakes with `ssl` (a server context) before the factory's
// protocol gets connection_made. A failed handshake is logged in debug mode only (scanners and clients that give
// up are no error of the server's), as asyncio does.
Server create_server(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                     const SslContext& ssl, ServerOptions options = {}, SslOptions ssl_options = {});
// The same for any host name, awaitable: create_server_async (net.hpp) with TLS; a bad context or a null factory
// throws std::invalid_argument at once.
Future<Server> create_server_async(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                   const SslContext& ssl, ServerOptions options = {}, SslOptions ssl_options = {});
// The same for any listening socket: wraps a factory so that its protocols run over TLS.
ProtocolFactory ssl_server_factory(const SslContext& ssl, ProtocolFactory factory, SslOptions ssl_options = {});

// create_connection with TLS: `done` gets the SslTransport once the handshake succeeded (the protocol's
// connection_made ran just before), or the error: a std::system_error from connecting, an SslError from the
// handshake (certificate rejected, timeout, ...). `ssl` must be a client context.
// The handle (net.hpp) covers both stages until `done` runs: cancel() while the name is looked up or the socket
// connects stops the attempt there (the socket is closed, neither the factory nor `done` is ever called);
// cancel() during the handshake aborts the connection (asyncio closes the transport when the task awaiting the
// handshake is cancelled): the socket is closed on the next loop pass, the factory's protocol never gets
// connection_made (nor connection_lost), and `done` is destroyed uncalled.
ConnectHandle create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                const SslContext& ssl, ConnectCallback done, ConnectOptions options = {},
                                SslOptions ssl_options = {});
// The same, awaitable (asyncio's `await loop.create_connection(..., ssl=ctx)`): the SslTransport once the handshake
// succeeded, or the error, out of the co_await. Cancelling the future (or the task awaiting it) cancels the attempt
// as the handle's cancel() does, on the next loop pass; a connection whose handshake completes in between is
// aborted, as nobody can take it any more.
Future<Transport*> create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host,
                                     std::uint16_t port, const SslContext& ssl, ConnectOptions options = {},
                                     SslOptions ssl_options = {});

// Upgrades a connected transport to TLS (STARTTLS): the TLS layer becomes the transport's protocol and the
// transport's current protocol becomes the application protocol of the TLS transport (it gets no second
// connection_made). The role comes from the context (client or server); a client needs
// ssl_options.server_hostname when the context checks host names. `done` gets the SslTransport after the
// handshake, or the error (the connection is closed then). Call it when the peer is known to start the handshake
// next, and with nothing unread that belongs to TLS (asyncio's start_tls has the same rule).
void start_tls(Transport& transport, const SslContext& ssl, ConnectCallback done, SslOptions ssl_options = {});

// On the running loop (std::runtime_error when none runs on this thread).
inline Server create_server(ProtocolFactory factory, std::string_view host, std::uint16_t port, const SslContext& ssl,
                            ServerOptions options = {}, SslOptions ssl_options = {}) {
  return create_server(get_running_loop(), std::move(factory), host, port, ssl, std::move(options), ssl_options);
}
inline Future<Server> create_server_async(ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                          const SslContext& ssl, ServerOptions options = {},
                                          SslOptions ssl_options = {}) {
  return create_server_async(get_running_loop(), std::move(factory), host, port, ssl, std::move(options), ssl_options);
}
inline Future<Transport*> create_connection(ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                            const SslContext& ssl, ConnectOptions options = {},
                                            SslOptions ssl_options = {}) {
  return create_connection(get_running_loop(), std::move(factory), host, port, ssl, std::move(options), ssl_options);
}

}  // namespace tulipa
