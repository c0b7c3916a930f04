// The private side of SslContext: the SSL_CTX and what its OpenSSL callbacks need (ALPN list, SNI callback, the
// client session cache). Shared (shared_ptr) by every SslContext copy and by every TlsEngine made from it, so the
// callbacks' data lives as long as any connection that can call them.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tulipa/tls.hpp"

namespace tulipa {

struct SslContext::Impl {
  Impl(SSL_CTX* ctx, TlsRole role) noexcept : ctx(ctx), role(role) {}
  ~Impl() { SSL_CTX_free(ctx); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Remembers `session` as the latest one for `server_hostname` (when the cache is on).
  void cache_session(const std::string& server_hostname, SslSession session);
  // Forgets the session of `server_hostname` (a resumption that failed must not be offered again).
  void forget_session(const std::string& server_hostname);
  SslSession find_session(std::string_view server_hostname) const;

  SSL_CTX* ctx;
  TlsRole role;
  bool check_hostname = false;
  bool verify_peer = false;
  std::vector<std::string> alpn;
  std::vector<unsigned char> alpn_wire;  // the ALPN list in wire format (length-prefixed names), for OpenSSL
  SniCallback sni_callback;

  mutable std::mutex cache_mutex;  // a client context may be shared by loops on several threads
  std::size_t cache_max = 0;       // 0: the cache is off
  std::unordered_map<std::string, SslSession> cache;
  std::deque<std::string> cache_order;  // oldest name first, for eviction
};

// The Impl an SSL_CTX belongs to (stored in the SSL_CTX's app data).
inline SslContext::Impl* context_impl(const SSL_CTX* ctx) noexcept {
  return static_cast<SslContext::Impl*>(SSL_CTX_get_app_data(ctx));
}

}  // namespace tulipa
