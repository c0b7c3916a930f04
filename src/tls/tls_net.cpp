// create_server / create_connection with TLS, and start_tls: each puts an SslProtocol between the socket transport
// and the application's protocol.
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>

#include "tls/ssl_protocol.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/tls_net.hpp"

namespace tulipa {

SslTransport* as_ssl_transport(Transport& transport) noexcept { return dynamic_cast<SslTransport*>(&transport); }

ProtocolFactory ssl_server_factory(const SslContext& ssl, ProtocolFactory factory, SslOptions ssl_options) {
  if (ssl.role() != TlsRole::server) throw std::invalid_argument("TLS server: the context is not a server context");
  if (!factory) throw std::invalid_argument("TLS server: no protocol factory");
  return [ssl, factory = std::move(factory),
          config = detail::SslConfig::from(ssl_options)]() -> std::unique_ptr<StreamProtocol> {
    std::unique_ptr<StreamProtocol> app = factory();
    if (!app) return nullptr;  // the server refuses the connection and reports it
    return std::make_unique<detail::SslProtocol>(ssl, std::move(app), config, /*app_connected=*/false, nullptr);
  };
}

Server create_server(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                     const SslContext& ssl, ServerOptions options, SslOptions ssl_options) {
  return create_server(loop, ssl_server_factory(ssl, std::move(factory), ssl_options), host, port, std::move(options));
}

Future<Server> create_server_async(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                   const SslContext& ssl, ServerOptions options, SslOptions ssl_options) {
  return create_server_async(loop, ssl_server_factory(ssl, std::move(factory), ssl_options), host, port,
                             std::move(options));
}

namespace {

// One TLS create_connection: the TCP stage (its own ConnectHandle), then the handshake. It is what the caller's
// handle observes, so that cancel() stops whichever stage runs. Owned by the stages' callbacks: the TCP stage's
// `done` and factory while it runs, then the SslProtocol's on_handshake until the handshake ends or is cancelled;
// the handle keeps nothing alive.
class TlsConnect final : public detail::ConnectAttempt {
 public:
  explicit TlsConnect(ConnectCallback done) noexcept : done_(std::move(done)) {}

  void set_tcp(ConnectHandle h) noexcept { tcp_ = std::move(h); }

  // The TCP stage's outcome: an error ends the attempt; success hands it to the handshake, which the socket
  // transport's protocol (the SslProtocol our factory made) started in its connection_made.
  void tcp_done(Transport* socket, std::exception_ptr error) {
    if (state_ != State::connecting) return;  // the handshake already failed in connection_made and told us
    if (error) {
      finish(nullptr, std::move(error));
      return;
    }
    state_ = State::handshaking;
    // Valid until the handshake ends: the SslProtocol tells handshake_done before its transport lets it go.
    tls_ = static_cast<detail::SslProtocol*>(&socket->get_protocol());
  }

  void handshake_done(Transport* transport, std::exception_ptr error) {
    if (state_ == State::handshaking) finish(transport, std::move(error));
  }

  bool pending() const noexcept override { return state_ == State::connecting || state_ == State::handshaking; }

  bool cancel() noexcept override {
    if (!pending()) return false;
    const State was = std::exchange(state_, State::cancelled);
    ConnectCallback done = std::move(done_);  // the user's callable goes now, uncalled
    if (was == State::connecting) {
      tcp_.cancel();  // destroys the TCP stage's callbacks (and the factory): no protocol is ever made
    } else {
      std::exchange(tls_, nullptr)->cancel_handshake();
    }
    return true;
  }

 private:
  enum class State : std::uint8_t { connecting, handshaking, done, cancelled };

  void finish(Transport* transport, std::exception_ptr error) {
    state_ = State::done;
    tls_ = nullptr;
    ConnectCallback done = std::move(done_);
    done(transport, std::move(error));
  }

  ConnectCallback done_;
  ConnectHandle tcp_;
  detail::SslProtocol* tls_ = nullptr;  // while handshaking
  State state_ = State::connecting;
};

}  // namespace

ConnectHandle create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host, std::uint16_t port,
                                const SslContext& ssl, ConnectCallback done, ConnectOptions options,
                                SslOptions ssl_options) {
  if (ssl.role() != TlsRole::client) throw std::invalid_argument("create_connection: the context is not a client one");
  if (!factory) throw std::invalid_argument("create_connection: no protocol factory");
  if (!done) throw std::invalid_argument("create_connection: no completion callback");
  detail::SslConfig config = detail::SslConfig::from(ssl_options);
  if (config.server_hostname.empty()) config.server_hostname = std::string(host);
  auto attempt = std::make_shared<TlsConnect>(std::move(done));
  ProtocolFactory tls_factory = [ssl, factory = std::move(factory), config = std::move(config),
                                 attempt]() -> std::unique_ptr<StreamProtocol> {
    std::unique_ptr<StreamProtocol> app = factory();
    if (!app) throw std::logic_error("create_connection: the protocol factory returned null");
    return std::make_unique<detail::SslProtocol>(ssl, std::move(app), config, /*app_connected=*/false,
                                                 [attempt](Transport* transport, std::exception_ptr error) {
                                                   attempt->handshake_done(transport, std::move(error));
                                                 });
  };
  attempt->set_tcp(create_connection(
      loop, std::move(tls_factory), host, port,
      [attempt](Transport* socket, std::exception_ptr error) { attempt->tcp_done(socket, std::move(error)); },
      std::move(options)));
  return ConnectHandle(attempt);
}

Future<Transport*> create_connection(EventLoop& loop, ProtocolFactory factory, std::string_view host,
                                     std::uint16_t port, const SslContext& ssl, ConnectOptions options,
                                     SslOptions ssl_options) {
  Future<Transport*> connected(loop);
  ConnectHandle attempt = create_connection(
      loop, std::move(factory), host, port, ssl,
      [connected](Transport* transport, std::exception_ptr error) mutable {
        if (error) {
          connected.try_set_exception(std::move(error));
        } else if (!connected.try_set_result(transport)) {
          transport->abort();  // cancelled just before the handshake completed: nobody can take the connection
        }
      },
      std::move(options), ssl_options);
  connected.add_done_callback([attempt](Future<Transport*>& f) mutable {
    if (f.cancelled()) attempt.cancel();
  });
  return connected;
}

void start_tls(Transport& transport, const SslContext& ssl, ConnectCallback done, SslOptions ssl_options) {
  if (!done) throw std::invalid_argument("start_tls: no completion callback");
  if (transport.is_closing()) throw std::logic_error("start_tls: the transport is closing");
  if (ssl.role() == TlsRole::client && ssl.check_hostname() && ssl_options.server_hostname.empty()) {
    throw std::invalid_argument("start_tls: the context checks host names, so ssl_options.server_hostname is needed");
  }
  auto owned = std::make_unique<detail::SslProtocol>(ssl, nullptr, detail::SslConfig::from(ssl_options),
                                                     /*app_connected=*/true, std::move(done));
  detail::SslProtocol& tls = *owned;
  tls.adopt_app(transport.set_protocol(std::move(owned)));
  tls.connection_made(transport);
}

}  // namespace tulipa
