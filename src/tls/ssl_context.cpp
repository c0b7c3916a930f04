// SslContext and SslSession: configuration over OpenSSL's SSL_CTX. The per-connection side is tls_engine.cpp.
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>
#include <utility>

#include "tls/ssl_context_impl.hpp"
#include "tls/ssl_errors.hpp"
#include "tls/tls_engine.hpp"
#include "tulipa/tls.hpp"

namespace tulipa {

// ---------------------------------------------------------------------------------------------- SslSession

SslSession::SslSession(const SslSession& other) noexcept : session_(other.session_) {
  if (session_ != nullptr) SSL_SESSION_up_ref(session_);
}

SslSession& SslSession::operator=(const SslSession& other) noexcept {
  if (this != &other) {
    if (other.session_ != nullptr) SSL_SESSION_up_ref(other.session_);
    SSL_SESSION_free(session_);  // null is fine
    session_ = other.session_;
  }
  return *this;
}

SslSession& SslSession::operator=(SslSession&& other) noexcept {
  if (this != &other) {
    SSL_SESSION_free(session_);
    session_ = std::exchange(other.session_, nullptr);
  }
  return *this;
}

SslSession::~SslSession() { SSL_SESSION_free(session_); }

bool SslSession::is_resumable() const noexcept { return session_ != nullptr && SSL_SESSION_is_resumable(session_); }

// ---------------------------------------------------------------------------------------------- Impl: cache

void SslContext::Impl::cache_session(const std::string& server_hostname, SslSession session) {
  std::lock_guard lock(cache_mutex);
  if (cache_max == 0 || server_hostname.empty()) return;
  auto it = cache.find(server_hostname);
  if (it != cache.end()) {
    it->second = std::move(session);
    return;
  }
  while (cache.size() >= cache_max && !cache_order.empty()) {
    cache.erase(cache_order.front());
    cache_order.pop_front();
  }
  cache.emplace(server_hostname, std::move(session));
  cache_order.push_back(server_hostname);
}

void SslContext::Impl::forget_session(const std::string& server_hostname) {
  std::lock_guard lock(cache_mutex);
  if (cache.erase(server_hostname) != 0) std::erase(cache_order, server_hostname);
}

SslSession SslContext::Impl::find_session(std::string_view server_hostname) const {
  std::lock_guard lock(cache_mutex);
  // unordered_map<std::string> has no heterogeneous lookup without a custom hash; the name is short.
  auto it = cache.find(std::string(server_hostname));
  return it != cache.end() ? it->second : SslSession();
}

// ---------------------------------------------------------------------------------------------- SslContext

namespace {

std::shared_ptr<SslContext::Impl> make_impl(TlsRole role) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(role == TlsRole::client ? TLS_client_method() : TLS_server_method());
  if (ctx == nullptr) throw ssl_configuration_error("cannot create an SSL context");
  auto impl = std::make_shared<SslContext::Impl>(ctx, role);
  SSL_CTX_set_app_data(ctx, impl.get());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Partial writes: SSL_write returns after each record that fits in the outgoing buffer instead of failing the
  // whole write when the buffer fills. Moving buffer: a retried write may come from another address (the caller's
  // buffer may have grown in between). Renegotiation (TLS 1.2) is refused: it is rarely needed and a known source
  // of attacks; TLS 1.3 has none.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  install_engine_callbacks(ctx, role);
  return impl;
}

void load_chain(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file) {
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    throw ssl_configuration_error("cannot load the certificate chain '" + cert_file + "'");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw ssl_configuration_error("cannot load the private key '" + key_file + "'");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    throw ssl_configuration_error("the private key '" + key_file + "' does not match the certificate '" + cert_file +
                                  "'");
  }
}

}  // namespace

SslContext SslContext::client() {
  auto impl = make_impl(TlsRole::client);
  SSL_CTX_set_verify(impl->ctx, SSL_VERIFY_PEER, nullptr);
  impl->verify_peer = true;
  impl->check_hostname = true;
  // A machine without a CA store still gets a usable context: connections then fail verification, clearly,
  // unless the application loads its own CAs.
  SSL_CTX_set_default_verify_paths(impl->ctx);
  ERR_clear_error();
  return SslContext(std::move(impl));
}

SslContext SslContext::server(const std::string& cert_file, const std::string& key_file) {
  auto impl = make_impl(TlsRole::server);
  load_chain(impl->ctx, cert_file, key_file);
  // A session may only be resumed in the context it was made in; OpenSSL refuses resumption when client
  // certificates are verified and this is unset.
  static constexpr unsigned char id_context[] = "tulipa";
  SSL_CTX_set_session_id_context(impl->ctx, id_context, sizeof(id_context) - 1);
  return SslContext(std::move(impl));
}

SslContext::~SslContext() = default;

TlsRole SslContext::role() const noexcept { return impl_->role; }

void SslContext::load_verify_locations(const std::string& ca_file) {
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(impl_->ctx, ca_file.c_str(), nullptr) != 1) {
    throw ssl_configuration_error("cannot load CA certificates from '" + ca_file + "'");
  }
}

void SslContext::load_verify_pem(std::string_view pem) {
  ERR_clear_error();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) throw ssl_configuration_error("cannot read CA certificates from memory");
  X509_STORE* store = SSL_CTX_get_cert_store(impl_->ctx);
  int loaded = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    const int ok = X509_STORE_add_cert(store, cert);
    X509_free(cert);
    if (ok != 1) throw ssl_configuration_error("cannot add a CA certificate");
    ++loaded;
  }
  ERR_clear_error();  // the loop ends on "no start line", which is how PEM reading says "no more"
  if (loaded == 0) throw SslError(SslError::Kind::configuration, "no PEM certificate in the CA data");
}

void SslContext::load_default_verify_paths() {
  ERR_clear_error();
  if (SSL_CTX_set_default_verify_paths(impl_->ctx) != 1) {
    throw ssl_configuration_error("cannot load the system's CA certificates");
  }
}

void SslContext::load_cert_chain(const std::string& cert_file, const std::string& key_file) {
  load_chain(impl_->ctx, cert_file, key_file);
}

void SslContext::disable_verification() {
  impl_->verify_peer = false;
  impl_->check_hostname = false;
  SSL_CTX_set_verify(impl_->ctx, SSL_VERIFY_NONE, nullptr);
}

void SslContext::set_check_hostname(bool on) {
  impl_->check_hostname = on;
  if (on && !impl_->verify_peer) {
    // Checking the name in a certificate nobody verified would protect nothing.
    impl_->verify_peer = true;
    SSL_CTX_set_verify(impl_->ctx, SSL_VERIFY_PEER, nullptr);
  }
}

bool SslContext::check_hostname() const noexcept { return impl_->check_hostname; }
bool SslContext::verifies_peer() const noexcept { return impl_->verify_peer; }

void SslContext::require_client_certificate() {
  if (impl_->role != TlsRole::server) {
    throw std::logic_error("require_client_certificate() is for server contexts");
  }
  impl_->verify_peer = true;
  SSL_CTX_set_verify(impl_->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
}

void SslContext::set_minimum_version(TlsVersion version) {
  SSL_CTX_set_min_proto_version(impl_->ctx, static_cast<int>(version));
}

void SslContext::set_maximum_version(TlsVersion version) {
  SSL_CTX_set_max_proto_version(impl_->ctx, static_cast<int>(version));
}

void SslContext::set_alpn_protocols(const std::vector<std::string>& protocols) {
  std::vector<unsigned char> wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255) {
      throw std::invalid_argument("an ALPN protocol name is 1 to 255 bytes: '" + p + "'");
    }
    wire.push_back(static_cast<unsigned char>(p.size()));
    wire.insert(wire.end(), p.begin(), p.end());
  }
  if (impl_->role == TlsRole::client) {
    ERR_clear_error();
    // SSL_CTX_set_alpn_protos returns 0 on success, unlike most of OpenSSL.
    if (SSL_CTX_set_alpn_protos(impl_->ctx, wire.data(), static_cast<unsigned>(wire.size())) != 0) {
      throw ssl_configuration_error("cannot set the ALPN protocols");
    }
  }
  impl_->alpn = protocols;
  impl_->alpn_wire = std::move(wire);
}

const std::vector<std::string>& SslContext::alpn_protocols() const noexcept { return impl_->alpn; }

void SslContext::set_sni_callback(SniCallback callback) {
  if (impl_->role != TlsRole::server) throw std::logic_error("set_sni_callback() is for server contexts");
  impl_->sni_callback = std::move(callback);
}

void SslContext::enable_session_cache(std::size_t max_entries) {
  if (impl_->role != TlsRole::client) {
    throw std::logic_error("enable_session_cache() is for client contexts; servers resume sessions by themselves");
  }
  std::lock_guard lock(impl_->cache_mutex);
  impl_->cache_max = max_entries;
}

SslSession SslContext::cached_session(std::string_view server_hostname) const {
  return impl_->find_session(server_hostname);
}

std::size_t SslContext::session_cache_size() const {
  std::lock_guard lock(impl_->cache_mutex);
  return impl_->cache.size();
}

}  // namespace tulipa
