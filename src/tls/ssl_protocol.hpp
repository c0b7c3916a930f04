// SslProtocol: the TLS layer between a stream transport and the application's protocol (asyncio's sslproto).
//
//     socket transport --get_buffer/buffer_updated--> SslProtocol --data_received / buffer_updated--> app protocol
//     socket transport <--write(ciphertext)--------- SslProtocol <--write(plaintext)--- AppTransport (app's view)
//
// It is a BufferedProtocol on the socket side, so the socket is read straight into the TLS engine's incoming ring
// (no copy before decryption), and it owns the application protocol and the Transport that protocol sees
// (AppTransport, an SslTransport). Ciphertext leaves the engine's outgoing ring straight into the socket
// transport's write(), which sends at once or buffers.
//
// States: handshaking -> wrapped -> shutting_down -> closed. Errors and timeouts go to closed at once.
//
// Life: owned by the socket transport (as its protocol); destroyed right after its connection_lost, together with
// the application protocol. Every loop callback it schedules holds a handle it cancels in its destructor.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "tls/tls_engine.hpp"
#include "tulipa/handle.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/tls_net.hpp"

namespace tulipa::detail {

// SslOptions with owned copies of what they point to, kept per connection (or per server).
struct SslConfig {
  std::string server_hostname;
  SslSession session;
  Duration handshake_timeout;
  Duration shutdown_timeout;
  std::size_t incoming_buffer;
  std::size_t outgoing_buffer;

  static SslConfig from(const SslOptions& o) {
    return SslConfig{std::string(o.server_hostname),
                     o.session ? *o.session : SslSession(),
                     o.handshake_timeout,
                     o.shutdown_timeout,
                     o.incoming_buffer,
                     o.outgoing_buffer};
  }
  // A view for calls that take SslOptions; valid while this config lives.
  SslOptions view() const noexcept {
    SslOptions o;
    o.server_hostname = server_hostname;
    o.session = session ? &session : nullptr;
    o.handshake_timeout = handshake_timeout;
    o.shutdown_timeout = shutdown_timeout;
    o.incoming_buffer = incoming_buffer;
    o.outgoing_buffer = outgoing_buffer;
    return o;
  }
};

class SslProtocol final : public BufferedProtocol {
 public:
  // `app_connected`: the application protocol already had connection_made (start_tls); it then gets no second
  // one. `on_handshake` (may be null) hears of the handshake's end: the app transport, or the error.
  // The loop is the socket transport's, known from connection_made on. `app` may be null until adopt_app().
  SslProtocol(const SslContext& context, std::unique_ptr<StreamProtocol> app, SslConfig options, bool app_connected,
              ConnectCallback on_handshake);
  // start_tls: the application protocol is the one the transport had, handed over by set_protocol().
  void adopt_app(std::unique_ptr<StreamProtocol> app) noexcept { app_ = std::move(app); }
  ~SslProtocol() override;

  // The TLS create_connection's handle was cancelled during the handshake (asyncio closes the transport when the
  // task awaiting the handshake is cancelled): the socket is aborted now (closed on the next loop pass, with our
  // connection_lost), `on_handshake` is destroyed uncalled and the application protocol is never told anything.
  // Does nothing once on_handshake was called.
  void cancel_handshake() noexcept;

  // --- the socket side (BufferedProtocol)
  void connection_made(Transport& transport) override;
  std::span<std::byte> get_buffer(std::size_t size_hint) override;
  void buffer_updated(std::size_t nbytes) override;
  bool eof_received() override;
  void connection_lost(std::exception_ptr exc) override;
  void pause_writing() override;
  void resume_writing() override;

 private:
  class AppTransport;
  friend class AppTransport;
  enum class State : std::uint8_t { handshaking, wrapped, shutting_down, closed };

  // Creates the engine (a client's at connection_made, a server's at the first bytes received); false after
  // fatal() when it could not be made.
  bool create_engine();
  // Makes what the engine can make of the received ciphertext: handshake progress, application data, the peer's
  // close_notify, errors. Then sends what the engine produced and decides whether to read the socket on.
  void process_incoming();
  // One handshake step; returns true once the handshake is complete (and the app was told).
  bool step_handshake();
  void handshake_complete();
  // Decrypts and delivers application data while the app reads.
  void deliver_app_data();
  // Reads and drops application data (while shutting down).
  void discard_app_data();
  void close_notify_received();
  void continue_shutdown();
  // Moves the engine's outgoing ciphertext into the socket transport.
  void flush();
  // Reads the socket only while the incoming ring has room.
  void update_socket_reading();
  // The one way the connection fails (asyncio's _fatal_error): `error` is what on_handshake or the app's
  // connection_lost gets. A TLS error or a timeout (`report` null) first sends the alert the engine made, if any;
  // an application protocol method that threw (`report` names it) is reported to the loop's exception handler
  // first. Then abort_now().
  void fatal(std::exception_ptr error, const char* report = nullptr);
  // Closed at once: both timers cancelled, the socket aborted (its connection_lost follows on the next loop pass).
  void abort_now() noexcept;
  void cancel_timers() noexcept {
    handshake_timer_.cancel();
    shutdown_timer_.cancel();
  }
  // The loop's exception handler gets `what` with the exception being handled (called in a catch block).
  void report_current(const char* what) const;
  void schedule_delivery();

  // --- the app side (AppTransport forwards here)
  void app_write(std::span<const std::byte> data);
  void app_close();
  void app_abort();
  void app_pause_reading();
  void app_resume_reading();

  EventLoop* loop_ = nullptr;  // the socket transport's, from connection_made on
  SslContext context_;
  SslConfig options_;
  std::unique_ptr<StreamProtocol> app_;
  std::unique_ptr<AppTransport> app_transport_;
  std::optional<TlsEngine> engine_;
  Transport* socket_ = nullptr;  // the transport we are the protocol of; valid until our connection_lost
  ConnectCallback on_handshake_;
  std::exception_ptr lost_exc_;  // what the app's connection_lost will carry (an SslError, a timeout, an app error)
  TimerHandle handshake_timer_;
  TimerHandle shutdown_timer_;
  Handle delivery_;  // resume_reading's deferred delivery
  State state_ = State::handshaking;
  bool app_connected_;
  bool app_reading_paused_ = false;
  bool app_writing_paused_ = false;
  bool socket_writing_paused_ = false;
  bool socket_reading_paused_ = false;
  bool peer_closed_ = false;      // close_notify received
  bool socket_eof_ = false;       // the socket reached EOF
  std::uint8_t lost_writes_ = 0;  // writes dropped after close() or the end of the connection (net/lost_writes.hpp)
};

}  // namespace tulipa::detail
