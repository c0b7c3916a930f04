#include "tls/ssl_protocol.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "loop/error_context.hpp"
#include "net/lost_writes.hpp"
#include "net/read_buffer.hpp"

namespace tulipa::detail {

// ------------------------------------------------------------------------------------------------ AppTransport

// What the application protocol holds: every call goes to the SslProtocol, which owns this object.
class SslProtocol::AppTransport final : public SslTransport {
 public:
  explicit AppTransport(SslProtocol& p) noexcept : p_(p) {}

  void close() override { p_.app_close(); }
  bool is_closing() const noexcept override {
    return p_.state_ != State::wrapped || p_.socket_ == nullptr || p_.socket_->is_closing();
  }
  EventLoop& get_loop() const noexcept override { return *p_.loop_; }
  SocketAddress peername() const override { return p_.socket_ ? p_.socket_->peername() : SocketAddress(); }
  SocketAddress sockname() const override { return p_.socket_ ? p_.socket_->sockname() : SocketAddress(); }
  int fd() const noexcept override { return p_.socket_ ? p_.socket_->fd() : -1; }

  void pause_reading() override { p_.app_pause_reading(); }
  void resume_reading() override { p_.app_resume_reading(); }
  bool is_reading() const noexcept override { return !p_.app_reading_paused_ && p_.state_ == State::wrapped; }

  void write(std::span<const std::byte> data) override { p_.app_write(data); }
  using Transport::write;
  void writelines(std::span<const std::span<const std::byte>> pieces) override {
    for (auto piece : pieces) p_.app_write(piece);
  }
  using Transport::writelines;
  // What waits to be sent: the socket's buffer (ciphertext) and any ciphertext not handed to it yet.
  std::size_t get_write_buffer_size() const noexcept override {
    std::size_t n = p_.socket_ ? p_.socket_->get_write_buffer_size() : 0;
    if (p_.engine_) n += p_.engine_->outgoing_size();
    return n;
  }
  // The limits are the socket transport's: its buffer is where a slow peer makes data pile up.
  void set_write_buffer_limits(std::size_t high, std::size_t low) override {
    if (p_.socket_) p_.socket_->set_write_buffer_limits(high, low);
  }
  WriteBufferLimits get_write_buffer_limits() const noexcept override {
    return p_.socket_ ? p_.socket_->get_write_buffer_limits() : WriteBufferLimits{64 * 1024, 16 * 1024};
  }
  void write_eof() override { throw std::logic_error("TLS transports cannot write EOF: close() sends close_notify"); }
  bool can_write_eof() const noexcept override { return false; }
  void abort() override { p_.app_abort(); }
  StreamProtocol& get_protocol() const noexcept override { return *p_.app_; }
  std::unique_ptr<StreamProtocol> set_protocol(std::unique_ptr<StreamProtocol> protocol) override {
    if (!protocol) throw std::invalid_argument("transport: set_protocol(null)");
    std::swap(protocol, p_.app_);
    return protocol;
  }

  std::string_view alpn_protocol() const noexcept override { return p_.engine_->alpn_protocol(); }
  std::string_view server_name() const noexcept override { return p_.engine_->server_name(); }
  std::string_view tls_version() const noexcept override { return p_.engine_->version(); }
  std::string_view cipher() const noexcept override { return p_.engine_->cipher(); }
  bool session_reused() const noexcept override { return p_.engine_->session_reused(); }
  SslSession session() const override { return p_.engine_->session(); }
  std::string peer_certificate_subject() const override { return p_.engine_->peer_certificate_subject(); }

 private:
  SslProtocol& p_;
};

// ------------------------------------------------------------------------------------------------ setup

SslProtocol::SslProtocol(const SslContext& context, std::unique_ptr<StreamProtocol> app, SslConfig options,
                         bool app_connected, ConnectCallback on_handshake)
    : context_(context),
      options_(std::move(options)),
      app_(std::move(app)),
      app_transport_(std::make_unique<AppTransport>(*this)),
      on_handshake_(std::move(on_handshake)),
      app_connected_(app_connected) {}

SslProtocol::~SslProtocol() {
  // The timers and the deferred delivery capture `this`.
  cancel_timers();
  delivery_.cancel();
}

void SslProtocol::connection_made(Transport& transport) {
  socket_ = &transport;
  loop_ = &transport.get_loop();
  socket_reading_paused_ = !transport.is_reading();
  handshake_timer_ = loop_->call_later(options_.handshake_timeout, [this] {
    fatal(std::make_exception_ptr(SslError(SslError::Kind::timeout, "TLS handshake timed out")));
  });
  // A client speaks first (its ClientHello). A server waits for the client's first bytes before it creates the
  // engine: a connection that stays silent (a scanner, a stalled client, a connect burst) costs no SSL object.
  if (context_.role() == TlsRole::client && create_engine()) process_incoming();
}

bool SslProtocol::create_engine() {
  try {
    TlsEngineOptions engine_options;
    engine_options.server_hostname = options_.server_hostname;
    engine_options.session = std::move(options_.session);
    engine_options.incoming_capacity = options_.incoming_buffer;
    engine_options.outgoing_capacity = options_.outgoing_buffer;
    engine_.emplace(context_, std::move(engine_options));
    return true;
  } catch (...) {
    fatal(std::current_exception());
    return false;
  }
}

// ------------------------------------------------------------------------------------------------ socket side

std::span<std::byte> SslProtocol::get_buffer(std::size_t /*size_hint*/) {
  // A server's first bytes: the engine is made now. If it cannot be, fatal() aborted the socket, and the bytes
  // go to the shared buffer and are dropped (buffer_updated).
  if (!engine_ && (state_ == State::closed || !create_engine())) return shared_read_buffer();
  // Reading is paused while the ring is full (update_socket_reading), so this is not empty while the socket reads.
  return engine_->incoming_space();
}

void SslProtocol::buffer_updated(std::size_t nbytes) {
  if (!engine_) return;
  engine_->commit_incoming(nbytes);
  process_incoming();
}

bool SslProtocol::eof_received() {
  socket_eof_ = true;
  if (!engine_) {
    // A server's client left before sending a byte: the handshake ends as it would have with an engine.
    fatal(std::make_exception_ptr(
        SslError(SslError::Kind::truncated, "the connection closed before the TLS handshake began")));
    return true;
  }
  engine_->feed_eof();
  // The engine now tells a close_notify that came before the EOF from a truncated stream.
  process_incoming();
  if (state_ == State::shutting_down) continue_shutdown();
  // The socket stays open: this layer closes it once TLS is done with it.
  return true;
}

void SslProtocol::connection_lost(std::exception_ptr exc) {
  cancel_timers();
  delivery_.cancel();
  state_ = State::closed;
  std::exception_ptr reported = lost_exc_ ? lost_exc_ : exc;
  if (on_handshake_) {
    // The handshake never completed; whoever waits for it hears why.
    if (!reported) {
      reported = std::make_exception_ptr(
          SslError(SslError::Kind::truncated, "the connection closed during the TLS handshake"));
    }
    ConnectCallback done = std::move(on_handshake_);
    on_handshake_ = nullptr;
    try {
      done(nullptr, reported);
    } catch (...) {
      report_current("TLS: the connection callback failed");
    }
  } else if (!app_connected_ && reported && loop_ != nullptr && loop_->get_debug()) {
    // A server's failed handshake: no one to tell but the log, and only when debugging (scanners are common).
    std::string message = "TLS handshake failed";
    try {
      std::rethrow_exception(reported);
    } catch (const std::exception& e) {
      message += ": ";
      message += e.what();
    } catch (...) {
    }
    loop_->log(message);
  }
  if (app_connected_ && app_) {
    try {
      app_->connection_lost(reported);
    } catch (...) {
      report_current("protocol.connection_lost() failed");
    }
  }
  socket_ = nullptr;
}

void SslProtocol::pause_writing() {
  socket_writing_paused_ = true;
  if (!app_connected_ || app_writing_paused_ || state_ == State::closed) return;
  app_writing_paused_ = true;
  try {
    app_->pause_writing();
  } catch (...) {
    fatal(std::current_exception(), "protocol.pause_writing() failed");
  }
}

void SslProtocol::resume_writing() {
  socket_writing_paused_ = false;
  if (!app_writing_paused_ || state_ == State::closed) return;
  app_writing_paused_ = false;
  try {
    app_->resume_writing();
  } catch (...) {
    fatal(std::current_exception(), "protocol.resume_writing() failed");
  }
}

// ------------------------------------------------------------------------------------------------ the engine

void SslProtocol::process_incoming() {
  if (!engine_) return;  // a server before the client's first byte
  if (state_ == State::handshaking && !step_handshake()) return;
  if (state_ == State::wrapped) {
    deliver_app_data();
  } else if (state_ == State::shutting_down) {
    discard_app_data();
  }
  if (state_ == State::closed) return;
  flush();
  update_socket_reading();
}

bool SslProtocol::step_handshake() {
  try {
    for (;;) {
      const auto status = engine_->do_handshake();
      if (status == TlsEngine::Status::ok) break;
      flush();
      if (status == TlsEngine::Status::want_read) {
        update_socket_reading();
        return false;
      }
      // want_write: the ring is full; flush() emptied it into the socket transport.
    }
  } catch (...) {
    fatal(std::current_exception());
    return false;
  }
  flush();
  handshake_complete();
  return state_ == State::wrapped;
}

void SslProtocol::handshake_complete() {
  handshake_timer_.cancel();
  state_ = State::wrapped;
  if (!app_connected_) {
    app_connected_ = true;
    try {
      app_->connection_made(*app_transport_);
    } catch (...) {
      fatal(std::current_exception(), "Fatal error: protocol.connection_made() call failed");
      return;
    }
    if (socket_writing_paused_) pause_writing();
  }
  if (on_handshake_) {
    ConnectCallback done = std::move(on_handshake_);
    on_handshake_ = nullptr;
    try {
      done(app_transport_.get(), nullptr);
    } catch (...) {
      report_current("TLS: the connection callback failed");
    }
  }
}

void SslProtocol::deliver_app_data() {
  while (state_ == State::wrapped && !app_reading_paused_ && !peer_closed_) {
    TlsEngine::Result r{0, TlsEngine::Status::want_read};
    if (app_->is_buffered()) {
      // Decrypt straight into the protocol's memory. Ask for it only when something may come out.
      if (engine_->pending_plaintext() == 0 && engine_->incoming_size() == 0 && !socket_eof_) return;
      auto* protocol = static_cast<BufferedProtocol*>(app_.get());
      std::span<std::byte> buf;
      try {
        buf = protocol->get_buffer(read_buffer_size);
        if (buf.empty()) throw std::logic_error("get_buffer() returned a zero-sized buffer");
      } catch (...) {
        fatal(std::current_exception(), "Fatal error: protocol.get_buffer() call failed");
        return;
      }
      try {
        r = engine_->read(buf);
      } catch (...) {
        fatal(std::current_exception());
        return;
      }
      if (r.status == TlsEngine::Status::ok) {
        try {
          protocol->buffer_updated(r.size);
        } catch (...) {
          fatal(std::current_exception(), "Fatal error: protocol.buffer_updated() call failed");
          return;
        }
        continue;
      }
    } else {
      // The thread's shared read buffer is free here: this runs from our socket's read (which went into the
      // engine's ring) or from a deferred loop callback, never inside another connection's data_received.
      std::span<std::byte> buf = shared_read_buffer();
      try {
        r = engine_->read(buf);
      } catch (...) {
        fatal(std::current_exception());
        return;
      }
      if (r.status == TlsEngine::Status::ok) {
        try {
          static_cast<Protocol*>(app_.get())->data_received(buf.first(r.size));
        } catch (...) {
          fatal(std::current_exception(), "Fatal error: protocol.data_received() call failed");
          return;
        }
        continue;
      }
    }
    switch (r.status) {
      case TlsEngine::Status::want_write:
        flush();
        continue;
      case TlsEngine::Status::closed:
        close_notify_received();
        return;
      default:
        return;  // want_read: wait for more ciphertext
    }
  }
}

void SslProtocol::discard_app_data() {
  std::span<std::byte> buf = shared_read_buffer();
  while (state_ == State::shutting_down && !peer_closed_) {
    TlsEngine::Result r{0, TlsEngine::Status::want_read};
    try {
      r = engine_->read(buf);
    } catch (...) {
      // The peer broke off while we close: nothing is left to protect, finish the close.
      peer_closed_ = true;
      break;
    }
    if (r.status == TlsEngine::Status::ok) continue;  // the application said close(): its data is dropped
    if (r.status == TlsEngine::Status::want_write) {
      flush();
      continue;
    }
    if (r.status == TlsEngine::Status::closed) {
      peer_closed_ = true;
      break;
    }
    return;  // want_read
  }
  if (state_ == State::shutting_down) continue_shutdown();
}

void SslProtocol::close_notify_received() {
  peer_closed_ = true;
  bool keep_open = false;
  try {
    keep_open = app_->eof_received();
  } catch (...) {
    fatal(std::current_exception(), "Fatal error: protocol.eof_received() call failed");
    return;
  }
  if (!keep_open) app_close();
}

void SslProtocol::continue_shutdown() {
  if (state_ != State::shutting_down) return;
  bool done = false;
  try {
    // Send our close_notify once; after that, only the peer's answer (seen by discard_app_data) moves us on.
    if (!engine_->close_notify_sent() || peer_closed_) {
      for (;;) {
        const auto status = engine_->shutdown();
        flush();
        if (status == TlsEngine::Status::want_write) continue;
        done = status == TlsEngine::Status::ok;
        break;
      }
    }
  } catch (...) {
    done = true;  // the peer broke the protocol during the close: close anyway
  }
  if (!done && !peer_closed_ && !socket_eof_) return;  // wait for the peer's close_notify (bounded by the timer)
  shutdown_timer_.cancel();
  state_ = State::closed;
  socket_->close();  // flushes what is buffered, then connection_lost(nullptr)
}

void SslProtocol::flush() {
  if (socket_ == nullptr || !engine_) return;
  // Straight from the ring into the socket transport, which sends at once or copies what the kernel leaves.
  for (auto out = engine_->outgoing(); !out.empty(); out = engine_->outgoing()) {
    socket_->write(out);
    engine_->consume_outgoing(out.size());
  }
}

void SslProtocol::update_socket_reading() {
  if (socket_ == nullptr || state_ == State::closed || !engine_) return;
  const bool room = !engine_->incoming_full();
  if (room && socket_reading_paused_) {
    socket_reading_paused_ = false;
    socket_->resume_reading();
  } else if (!room && !socket_reading_paused_) {
    socket_reading_paused_ = true;
    socket_->pause_reading();
  }
}

void SslProtocol::fatal(std::exception_ptr error, const char* report) {
  if (report) loop_->call_exception_handler(detail::error_context(report, error, socket_ ? socket_->fd() : -1));
  if (state_ == State::closed) return;  // failing already: the socket is being aborted
  if (!lost_exc_) lost_exc_ = std::move(error);
  state_ = State::closed;  // before the flush: a pause_writing it causes must not reach the application
  // A TLS error: the alert that tells the peer why, if the engine made one; sent at once unless the kernel is full.
  if (!report) flush();
  abort_now();
}

void SslProtocol::abort_now() noexcept {
  state_ = State::closed;
  cancel_timers();
  if (socket_) socket_->abort();
}

void SslProtocol::report_current(const char* what) const {
  loop_->call_exception_handler(detail::error_context(what, std::current_exception(), socket_ ? socket_->fd() : -1));
}

void SslProtocol::schedule_delivery() {
  if (delivery_.pending()) return;
  // Deferred, as asyncio does: resume_reading() may be called from inside another connection's data_received,
  // whose span lives in the shared read buffer this delivery would reuse.
  delivery_ = loop_->call_soon([this] {
    if (state_ != State::wrapped) return;
    deliver_app_data();
    if (state_ == State::closed) return;
    flush();
    update_socket_reading();
  });
}

// ------------------------------------------------------------------------------------------------ app side

void SslProtocol::app_write(std::span<const std::byte> data) {
  if (state_ == State::handshaking) throw std::logic_error("TLS: write() before the handshake completed");
  // After close() (or once the connection is gone) writes are dropped and counted, as the socket transport does.
  if (data.empty()) return;
  if (state_ != State::wrapped) return count_lost_write(*loop_, lost_writes_, "TLS transport");
  while (!data.empty() && state_ == State::wrapped) {
    TlsEngine::Result r{0, TlsEngine::Status::ok};
    try {
      r = engine_->write(data);
    } catch (...) {
      fatal(std::current_exception());
      return;
    }
    if (r.status == TlsEngine::Status::ok) {
      data = data.subspan(r.size);
    } else if (r.status == TlsEngine::Status::want_write) {
      flush();  // always makes room: the socket transport takes everything (it buffers what the kernel does not)
    } else {
      // want_read could only come from a renegotiation, which the contexts refuse.
      fatal(std::make_exception_ptr(SslError(SslError::Kind::protocol, "write blocked on a read")));
      return;
    }
  }
  flush();
}

void SslProtocol::app_close() {
  if (state_ == State::shutting_down || state_ == State::closed) return;
  if (state_ == State::handshaking) {
    state_ = State::closed;
    handshake_timer_.cancel();
    if (socket_) socket_->close();
    return;
  }
  state_ = State::shutting_down;
  shutdown_timer_ = loop_->call_later(options_.shutdown_timeout, [this] {
    fatal(std::make_exception_ptr(SslError(SslError::Kind::timeout, "TLS shutdown timed out")));
  });
  continue_shutdown();
  // The peer's close_notify may already wait in the ring: read it now, there may be no more socket reads.
  if (state_ == State::shutting_down) discard_app_data();
  if (state_ == State::shutting_down) update_socket_reading();
}

void SslProtocol::app_abort() {
  if (state_ == State::closed && socket_ == nullptr) return;
  abort_now();
}

void SslProtocol::cancel_handshake() noexcept {
  if (!on_handshake_) return;  // told already: the attempt is over
  ConnectCallback gone = std::move(on_handshake_);
  on_handshake_ = nullptr;              // connection_lost finds no one to tell: the canceller asked for nothing more
  if (state_ == State::closed) return;  // failing already: the socket is being aborted
  // Handshaking, or (cancelled from the application's connection_made) just wrapped: either way it goes now.
  abort_now();
}

void SslProtocol::app_pause_reading() {
  if (state_ != State::wrapped) return;
  app_reading_paused_ = true;  // the socket stops being read once the ring is full (update_socket_reading)
}

void SslProtocol::app_resume_reading() {
  if (!app_reading_paused_) return;
  app_reading_paused_ = false;
  if (state_ == State::wrapped) schedule_delivery();
}

}  // namespace tulipa::detail
