#include "tls/tls_engine.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <stdexcept>
#include <utility>

#include "loop/heap_trim.hpp"
#include "tls/ssl_context_impl.hpp"
#include "tls/ssl_errors.hpp"

namespace tulipa {

namespace {

// SSL_free_buffers freed a read buffer holding part of a record (a use after free, CVE-2024-4741) before OpenSSL
// 3.0.14, 3.1.6, 3.2.2 and 3.3.1; the library found at run time decides whether an idle engine may call it.
bool free_buffers_is_safe() noexcept {
  static const bool safe = [] {
    const unsigned long v = OpenSSL_version_num();  // 3.x: major << 28 | minor << 20 | patch << 4
    const unsigned long major = v >> 28, minor = (v >> 20) & 0xff, patch = (v >> 4) & 0xff;
    if (major != 3) return major > 3;
    static constexpr unsigned long first_fixed[] = {14, 6, 2, 1};  // 3.0, 3.1, 3.2, 3.3
    return minor > 3 || patch >= first_fixed[minor];
  }();
  return safe;
}

// What an idle engine holds in OpenSSL's heap objects, roughly (tests/tls/tls_alloc_test.cpp measures 14 KiB for a
// server's connection, 19 KiB for a client's); reported to the heap trimmer when the engine goes.
constexpr std::size_t idle_heap_bytes = 16 * 1024;

TlsEngine* engine_of(const SSL* ssl) noexcept { return static_cast<TlsEngine*>(SSL_get_app_data(ssl)); }

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Client: a session (TLS 1.2) or a ticket (TLS 1.3) arrived. Returning 1 keeps the reference OpenSSL passes.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  TlsEngine* engine = engine_of(ssl);
  if (engine == nullptr) return 0;
  engine->on_new_session(SslSession(session));
  return 1;
}

// Server: the ClientHello's SNI extension (or its absence) is known; the certificate is not chosen yet.
int on_servername(SSL* ssl, int* alert, void* /*arg*/) {
  TlsEngine* engine = engine_of(ssl);
  SslContext::Impl* impl = context_impl(SSL_get_SSL_CTX(ssl));
  if (engine == nullptr || impl == nullptr || !impl->sni_callback) return SSL_TLSEXT_ERR_OK;
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  SniRequest request(name != nullptr ? std::string_view(name) : std::string_view(), engine);
  try {
    // Exceptions must not cross OpenSSL's C frames: keep it, fail the handshake, rethrow once OpenSSL returned.
    impl->sni_callback(request);
  } catch (...) {
    engine->set_callback_exception(std::current_exception());
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  if (request.rejected()) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

// Server: pick our most preferred protocol among the client's. The context (after any SNI switch) decides.
int on_alpn_select(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                   unsigned int inlen, void* /*arg*/) {
  SslContext::Impl* impl = context_impl(SSL_get_SSL_CTX(ssl));
  if (impl == nullptr || impl->alpn_wire.empty()) return SSL_TLSEXT_ERR_NOACK;
  unsigned char* selected = nullptr;
  // `selected` points into one of the two lists: ours lives in the context, which the engine keeps alive.
  if (SSL_select_next_proto(&selected, outlen, impl->alpn_wire.data(), static_cast<unsigned>(impl->alpn_wire.size()),
                            in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN, as Python does
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ the ring BIO

// The BIO OpenSSL reads ciphertext from (the engine's incoming ring) and writes ciphertext to (its outgoing ring).
// It behaves as BIO pair's internal half did: empty incoming ring -> retry read, or EOF once feed_eof() was
// called; full outgoing ring -> retry write. OpenSSL's TLS code asks only for the controls answered here.
struct RingBio {
  static TlsEngine& engine(BIO* b) noexcept { return *static_cast<TlsEngine*>(BIO_get_data(b)); }

  static int write(BIO* b, const char* data, std::size_t len, std::size_t* written) {
    BIO_clear_retry_flags(b);
    std::size_t n = 0;
    try {
      n = engine(b).outgoing_.write({reinterpret_cast<const std::byte*>(data), len});
    } catch (const std::bad_alloc&) {
      ERR_raise(ERR_LIB_BIO, ERR_R_MALLOC_FAILURE);
      return 0;
    }
    if (n == 0 && len > 0) {
      BIO_set_retry_write(b);
      return 0;
    }
    *written = n;
    return 1;
  }
  static int read(BIO* b, char* out, std::size_t len, std::size_t* readbytes) {
    BIO_clear_retry_flags(b);
    TlsEngine& e = engine(b);
    const std::size_t n = e.incoming_.read({reinterpret_cast<std::byte*>(out), len});
    if (n == 0 && len > 0) {
      if (!e.eof_fed_) BIO_set_retry_read(b);
      return 0;  // with no retry flag: end of file
    }
    *readbytes = n;
    return 1;
  }
  static long ctrl(BIO* b, int cmd, long /*num*/, void* /*ptr*/) {
    TlsEngine& e = engine(b);
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_PENDING:
        return static_cast<long>(e.incoming_.size());
      case BIO_CTRL_WPENDING:
        return static_cast<long>(e.outgoing_.size());
      case BIO_CTRL_EOF:
        return e.eof_fed_ && e.incoming_.size() == 0 ? 1 : 0;
      default:
        return 0;
    }
  }
  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tulipa TLS engine rings");
      if (bm == nullptr) return bm;
      BIO_meth_set_write_ex(bm, write);
      BIO_meth_set_read_ex(bm, read);
      BIO_meth_set_ctrl(bm, ctrl);
      BIO_meth_set_create(bm, create);
      return bm;
    }();
    return m;
  }
};

void install_engine_callbacks(SSL_CTX* ctx, TlsRole role) {
  if (role == TlsRole::client) {
    // Sessions are kept by the engine and the context's own cache (keyed by host name), not OpenSSL's internal
    // store, which clients cannot look up by name.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  } else {
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, nullptr);
  }
}

void SniRequest::use_context(const SslContext& other) {
  if (other.role() != TlsRole::server) throw std::invalid_argument("SniRequest::use_context needs a server context");
  static_cast<TlsEngine*>(connection_)->switch_context(other);
}

// ------------------------------------------------------------------------------------------------ TlsEngine

TlsEngine::TlsEngine(const SslContext& context, TlsEngineOptions options)
    : context_(context.shared_impl()),
      incoming_(options.incoming_capacity),
      outgoing_(options.outgoing_capacity),
      server_hostname_(std::move(options.server_hostname)),
      role_(context.role()) {
  if (options.incoming_capacity == 0 || options.outgoing_capacity == 0) {
    throw std::invalid_argument("TLS: the engine's buffers must not be empty");
  }
  if (role_ == TlsRole::client && context_->check_hostname && server_hostname_.empty()) {
    throw std::invalid_argument("TLS: the context checks host names, so a server_hostname is needed");
  }
  ERR_clear_error();
  ssl_ = SSL_new(context_->ctx);
  if (ssl_ == nullptr) throw ssl_configuration_error("cannot create an SSL connection");
  SSL_set_app_data(ssl_, this);
  // OpenSSL's read and write record buffers (16 KiB each) are freed whenever they are empty: an idle connection
  // holds neither.
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  BIO_METHOD* method = RingBio::method();
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl_);
    throw ssl_configuration_error("cannot create the TLS buffers");
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // the SSL owns `bio` from here

  if (role_ == TlsRole::server) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (!server_hostname_.empty()) {
    const bool ip = is_ip_literal(server_hostname_);
    bool ok = true;
    if (!ip) ok = SSL_set_tlsext_host_name(ssl_, server_hostname_.c_str()) == 1;
    if (ok && context_->check_hostname) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
      if (ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, server_hostname_.c_str()) == 1;
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = X509_VERIFY_PARAM_set1_host(param, server_hostname_.c_str(), server_hostname_.size()) == 1;
      }
    }
    if (!ok) {
      SSL_free(ssl_);
      throw ssl_configuration_error("invalid server_hostname '" + server_hostname_ + "'");
    }
  }
  SslSession session = std::move(options.session);
  if (!session && !server_hostname_.empty()) {
    session = context_->find_session(server_hostname_);
    offered_cached_session_ = static_cast<bool>(session);
  }
  if (session) SSL_set_session(ssl_, session.native());  // takes its own reference
}

TlsEngine::~TlsEngine() {
  // OpenSSL invalidates the session of a connection freed without close_notify sent, for fear it failed. A
  // connection that did not fail keeps its session resumable: many peers just close the socket, and the owner
  // may drop an engine without a polite shutdown. A failed one (failed_) stays invalidated.
  if (handshake_done_ && !failed_) SSL_set_shutdown(ssl_, SSL_get_shutdown(ssl_) | SSL_SENT_SHUTDOWN);
  SSL_free(ssl_);  // and the BIO
  // OpenSSL's heap objects of one connection (tls_engine.hpp): after a burst of closes, the loop trims the heap.
  detail::heap_released(idle_heap_bytes);
}

void TlsEngine::fail(int ret, std::string_view during) {
  failed_ = true;
  if (callback_exception_) {
    ERR_clear_error();
    std::rethrow_exception(std::exchange(callback_exception_, nullptr));
  }
  const int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    // A BIO pair reports no system errors; this is the old way of saying "EOF in the middle of the protocol".
    throw SslError(SslError::Kind::truncated, "unexpected eof while reading");
  }
  SslError error = ssl_error_from_queue(ssl_, during);
  if (!handshake_done_ && offered_cached_session_) context_->forget_session(server_hostname_);
  throw error;
}

TlsEngine::Status TlsEngine::do_handshake() {
  if (handshake_done_) return Status::ok;
  if (failed_) throw std::logic_error("TLS: the connection already failed");
  ERR_clear_error();
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    handshake_done_ = true;
    return Status::ok;
  }
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      if (!eof_fed_) return Status::want_read;
      break;  // cannot happen: at EOF OpenSSL reports the EOF as an error
    case SSL_ERROR_WANT_WRITE:
      return Status::want_write;
    default:
      break;
  }
  fail(ret, "handshake failed");
}

std::span<std::byte> TlsEngine::incoming_space() {
  if (eof_fed_) return {};
  return incoming_.space();
}

void TlsEngine::commit_incoming(std::size_t n) noexcept { incoming_.commit(n); }

std::size_t TlsEngine::feed(std::span<const std::byte> data) {
  if (eof_fed_) return 0;
  return incoming_.write(data);
}

void TlsEngine::feed_eof() noexcept {
  // What was fed stays readable; after it, OpenSSL's reads see end of file (RingBio).
  eof_fed_ = true;
  incoming_.release_if_empty();
}

std::size_t TlsEngine::incoming_size() const noexcept { return incoming_.size(); }

std::span<const std::byte> TlsEngine::outgoing() noexcept { return outgoing_.data(); }

void TlsEngine::consume_outgoing(std::size_t n) noexcept { outgoing_.consume(n); }

std::size_t TlsEngine::outgoing_size() const noexcept { return outgoing_.size(); }

TlsEngine::Result TlsEngine::read(std::span<std::byte> into) {
  if (failed_) throw std::logic_error("TLS: the connection already failed");
  if (into.empty()) return {0, Status::ok};
  ERR_clear_error();
  std::size_t n = 0;
  const int ret = SSL_read_ex(ssl_, into.data(), into.size(), &n);
  if (ret == 1) {
    // The handshake can complete inside SSL_read (when the owner skipped do_handshake()).
    handshake_done_ = true;
    return {n, Status::ok};
  }
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      // Idle. SSL_MODE_RELEASE_BUFFERS gives the read buffer back only after application data; a read that met
      // only post-handshake messages (a client's TLS 1.3 session tickets) kept its 16 KiB. SSL_free_buffers frees
      // it unless part of a record waits in it (then it refuses, and the next read completes the record).
      if (free_buffers_is_safe()) (void)SSL_free_buffers(ssl_);
      return {0, Status::want_read};
    case SSL_ERROR_WANT_WRITE:
      return {0, Status::want_write};
    case SSL_ERROR_ZERO_RETURN:
      return {0, Status::closed};
    default:
      break;
  }
  fail(ret, "read failed");
}

std::size_t TlsEngine::pending_plaintext() const noexcept { return static_cast<std::size_t>(SSL_pending(ssl_)); }

TlsEngine::Result TlsEngine::write(std::span<const std::byte> data) {
  if (failed_) throw std::logic_error("TLS: the connection already failed");
  if (close_notify_sent()) throw std::logic_error("TLS: write after shutdown()");
  if (data.empty()) return {0, Status::ok};
  ERR_clear_error();
  std::size_t n = 0;
  const int ret = SSL_write_ex(ssl_, data.data(), data.size(), &n);
  if (ret == 1) {
    handshake_done_ = true;
    return {n, Status::ok};
  }
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_WRITE:
      return {0, Status::want_write};
    case SSL_ERROR_WANT_READ:
      // Only during a handshake the owner did not finish first.
      return {0, Status::want_read};
    default:
      break;
  }
  fail(ret, "write failed");
}

TlsEngine::Status TlsEngine::shutdown() {
  if (!handshake_done_ || failed_) {
    // Nothing to close politely: no session was established (or it already failed).
    return Status::ok;
  }
  ERR_clear_error();
  const int ret = SSL_shutdown(ssl_);
  if (ret == 1) return Status::ok;
  if (ret == 0) return Status::want_read;  // close_notify sent; the peer's has not arrived yet
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_WRITE:
      return Status::want_write;
    case SSL_ERROR_WANT_READ:
      return Status::want_read;
    default:
      break;
  }
  fail(ret, "shutdown failed");
}

bool TlsEngine::close_notify_sent() const noexcept { return (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0; }

bool TlsEngine::close_notify_received() const noexcept { return (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0; }

std::string_view TlsEngine::alpn_protocol() const noexcept {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  if (data == nullptr) return {};
  return {reinterpret_cast<const char*>(data), len};
}

std::string_view TlsEngine::server_name() const noexcept {
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name != nullptr ? std::string_view(name) : std::string_view();
}

std::string_view TlsEngine::version() const noexcept { return SSL_get_version(ssl_); }

std::string_view TlsEngine::cipher() const noexcept {
  const char* name = SSL_get_cipher_name(ssl_);
  return name != nullptr ? std::string_view(name) : std::string_view();
}

bool TlsEngine::session_reused() const noexcept { return SSL_session_reused(ssl_) == 1; }

SslSession TlsEngine::session() const { return SslSession(SSL_get1_session(ssl_)); }

std::string TlsEngine::peer_certificate_subject() const {
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return {};
  std::string out;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_ONELINE);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    if (len > 0) out.assign(data, static_cast<std::size_t>(len));
    BIO_free(bio);
  }
  X509_free(cert);
  return out;
}

void TlsEngine::on_new_session(SslSession session) { context_->cache_session(server_hostname_, std::move(session)); }

void TlsEngine::switch_context(const SslContext& context) {
  if (SSL_set_SSL_CTX(ssl_, context.impl().ctx) == nullptr) {
    throw ssl_configuration_error("cannot switch the connection to another context");
  }
  sni_context_ = context.shared_impl();
}

}  // namespace tulipa
