// TLS for tulipa: SslContext (certificates, verification, ALPN, SNI, session resumption), SslSession and SslError.
//
// The model is Python's ssl module as asyncio uses it: a context is a shared, configured object (copying an
// SslContext shares it, as passing a Python SSLContext around does); each connection made with it keeps it alive.
// The TLS work itself is done by OpenSSL driven through memory buffers (src/tls/), never on a socket, so TLS sits
// between any transport and any protocol.
//
// Secure by default: SslContext::client() verifies the server's certificate chain against the system's CA store
// and checks that it names the host the connection asked for. Turning that off takes an explicit call whose name
// says what it does (disable_verification()).
//
// Configure a context fully before the first connection uses it: like OpenSSL's SSL_CTX, a context is safe to use
// from several threads once configured, but changing it while connections handshake with it is not supported.
// No OpenSSL header is needed to use this one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct ssl_session_st;  // OpenSSL's SSL_SESSION

namespace tulipa {

// A TLS failure, with OpenSSL's own reason string ("certificate verify failed", "wrong version number", ...).
// what() is the reason, followed for certificate failures by why verification failed:
//   "certificate verify failed: certificate has expired".
class SslError : public std::runtime_error {
 public:
  enum class Kind {
    protocol,       // the peer broke the protocol, sent something that is not TLS, or sent a fatal alert
    certificate,    // the peer's certificate failed verification (untrusted, expired, wrong host name, ...)
    truncated,      // the byte stream ended without the peer's close_notify (a crashed peer or a truncation attack)
    configuration,  // a local setup error: unreadable certificate or key file, key not matching the certificate, ...
    timeout,        // the handshake or the shutdown did not finish in time (raised by the protocol layer)
  };

  SslError(Kind kind, std::string reason, std::string verify_message = {}, unsigned long code = 0,
           long verify_result = 0);

  Kind kind() const noexcept { return kind_; }
  // OpenSSL's reason string for the error, e.g. "certificate verify failed" (lower case, as OpenSSL spells it).
  const std::string& reason() const noexcept { return reason_; }
  // For Kind::certificate: the X.509 verification error ("certificate has expired", "hostname mismatch", ...).
  const std::string& verify_message() const noexcept { return verify_message_; }
  // For Kind::certificate: OpenSSL's X509_V_ERR_* number; 0 otherwise.
  long verify_result() const noexcept { return verify_result_; }
  // OpenSSL's packed error code (ERR_get_error()), 0 when the error did not come from OpenSSL's error queue.
  unsigned long code() const noexcept { return code_; }

 private:
  Kind kind_;
  std::string reason_;
  std::string verify_message_;
  unsigned long code_;
  long verify_result_;
};

enum class TlsVersion : std::uint16_t { tls1_2 = 0x0303, tls1_3 = 0x0304 };

enum class TlsRole : std::uint8_t { client, server };

// A TLS session a client can offer to resume on a later connection to the same server (an abbreviated handshake:
// no certificate exchange, one round trip less). Copying shares the same session. Empty when default-constructed.
class SslSession {
 public:
  SslSession() noexcept = default;
  // Takes ownership of one reference to `session` (may be null).
  explicit SslSession(ssl_session_st* session) noexcept : session_(session) {}
  SslSession(const SslSession& other) noexcept;
  SslSession& operator=(const SslSession& other) noexcept;
  SslSession(SslSession&& other) noexcept : session_(other.session_) { other.session_ = nullptr; }
  SslSession& operator=(SslSession&& other) noexcept;
  ~SslSession();

  explicit operator bool() const noexcept { return session_ != nullptr; }
  // True when the server gave the session something to resume with (a session id or a ticket).
  bool is_resumable() const noexcept;
  ssl_session_st* native() const noexcept { return session_; }

 private:
  ssl_session_st* session_ = nullptr;
};

class SslContext;

// What a server's SNI callback sees: the host name the client asked for, during the handshake. The callback may
// switch the connection to another context (another certificate) or refuse the connection.
// Valid only during the callback.
class SniRequest {
 public:
  // The name the client sent, or empty when it sent none (clients send none for IP addresses).
  std::string_view server_name() const noexcept { return server_name_; }
  // Serve this connection with `other` (its certificate, key and ALPN list). `other` must be a server context.
  // The client-certificate policy stays the first context's (OpenSSL's SSL_set_SSL_CTX does not switch it).
  void use_context(const SslContext& other);
  // Abort the handshake with an unrecognized_name alert.
  void reject() noexcept { rejected_ = true; }

  // Used by the TLS layer; not for applications.
  SniRequest(std::string_view name, void* connection) noexcept : server_name_(name), connection_(connection) {}
  bool rejected() const noexcept { return rejected_; }

 private:
  std::string_view server_name_;
  void* connection_;
  bool rejected_ = false;
};

// Called on the server during the handshake, on the thread running the handshake. Exceptions it throws abort the
// handshake and surface from it.
using SniCallback = std::function<void(SniRequest&)>;

class SslContext {
 public:
  // A client context: peer verification on, host name checking on, the system's CA store loaded, TLS 1.2 at least.
  static SslContext client();
  // A server context presenting the PEM certificate chain in `cert_file` with the PEM private key in `key_file`.
  // Throws SslError(Kind::configuration) when a file cannot be read or the key does not match the certificate.
  static SslContext server(const std::string& cert_file, const std::string& key_file);

  SslContext(const SslContext&) noexcept = default;  // shares the context
  SslContext& operator=(const SslContext&) noexcept = default;
  SslContext(SslContext&&) noexcept = default;
  SslContext& operator=(SslContext&&) noexcept = default;
  ~SslContext();

  TlsRole role() const noexcept;

  // --- verification
  // Trust the CA certificates of a PEM file (in addition to those already trusted). Throws SslError(configuration).
  void load_verify_locations(const std::string& ca_file);
  // Trust CA certificates given as PEM text (Python's cadata). Throws SslError(configuration).
  void load_verify_pem(std::string_view pem);
  // Trust the system's CA store (client() does this already).
  void load_default_verify_paths();
  // Present this certificate chain and key (a client certificate, or replace a server's). Throws SslError.
  void load_cert_chain(const std::string& cert_file, const std::string& key_file);
  // Client: accept ANY certificate for ANY host name. This gives up TLS's protection against a man in the middle;
  // only for tests and for peers authenticated some other way.
  void disable_verification();
  // Client: whether the certificate must name the host given as server_hostname (on by default). Turning it on
  // again also turns peer verification back on.
  void set_check_hostname(bool on);
  bool check_hostname() const noexcept;
  bool verifies_peer() const noexcept;
  // Server: ask for a client certificate, reject clients without one or with one not signed by a trusted CA
  // (load_verify_locations / load_verify_pem).
  void require_client_certificate();

  // --- protocol
  void set_minimum_version(TlsVersion version);
  void set_maximum_version(TlsVersion version);
  // ALPN (RFC 7301). Client: the protocols offered, most preferred first. Server: the protocols accepted, most
  // preferred first; the server picks its most preferred one the client offers, and goes on without ALPN when
  // they share none (as Python does). Each name is 1 to 255 bytes (std::invalid_argument otherwise).
  void set_alpn_protocols(const std::vector<std::string>& protocols);
  const std::vector<std::string>& alpn_protocols() const noexcept;
  // Server: called with the host name the client asked for (SNI), before the certificate is chosen.
  void set_sni_callback(SniCallback callback);

  // --- session resumption
  // Client: remember the latest session of each server_hostname (up to `max_entries` names) and offer it on the
  // next connection to that name, so it resumes (the connection's session_reused() tells). Thread-safe. Off by default,
  // since resumption lets a server link connections together.
  void enable_session_cache(std::size_t max_entries = 256);
  // The cached session for `server_hostname`, or an empty one.
  SslSession cached_session(std::string_view server_hostname) const;
  std::size_t session_cache_size() const;

  // The TLS layer's view (src/tls); opaque to applications.
  struct Impl;
  Impl& impl() const noexcept { return *impl_; }
  const std::shared_ptr<Impl>& shared_impl() const noexcept { return impl_; }

 private:
  explicit SslContext(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace tulipa
