// TlsEngine: one TLS connection, sans I/O. OpenSSL's SSL object works on a BIO pair (two memory ring buffers, one
// each way); the engine never touches a socket. Whoever owns the engine (the SSL protocol layer, a test) moves
// ciphertext between the engine and the network, and plaintext between the engine and the application:
//
//     network --feed()/incoming_space()+commit_incoming()--> [incoming ring] --read()--> plaintext
//     plaintext --write()--> [outgoing ring] --outgoing()+consume_outgoing()--> network
//
// Zero copies on the ciphertext side: incoming_space() lends the free part of the incoming ring, so a transport
// can recv() straight into it (a BufferedProtocol's get_buffer); outgoing() lends the pending ciphertext, so it is
// handed to send() as is. The only copies are OpenSSL's decryption and encryption themselves.
//
// Flow control is in the rings' fixed sizes: when the incoming ring is full, feed() takes less than offered and
// the owner stops reading the network; when the outgoing ring is full, write() returns want_write and the owner
// sends some ciphertext first.
//
// Errors: every TLS failure is thrown as SslError (see tulipa/tls.hpp). After one is thrown the engine is dead:
// the only thing left to do is to send what outgoing() holds (it may carry the fatal alert for the peer) and close.
//
// Memory per connection: the rings (TlsEngineOptions, 32 KiB each by default) hold storage only while they hold
// bytes (engine_ring.hpp), and OpenSSL's 16 KiB record buffers are released between records
// (SSL_MODE_RELEASE_BUFFERS), so an idle handshaken engine is the SSL object and its session: a few KiB
// (bench/tls_memory measures it). Steady-state traffic allocates nothing here; OpenSSL 3.0 itself allocates and
// frees 4 small WPACKET blocks per record it writes, and its record buffers around each record. Not thread-safe:
// one engine belongs to one thread at a time, as a connection belongs to one loop.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "tls/engine_ring.hpp"
#include "tulipa/tls.hpp"

struct ssl_st;  // SSL
struct bio_st;  // BIO
struct ssl_ctx_st;

namespace tulipa {

struct TlsEngineOptions {
  // Client: the name sent as SNI and, when the context checks host names, the name the certificate must carry.
  // An IP address literal is checked against the certificate's IP addresses and is not sent as SNI (RFC 6066).
  std::string server_hostname;
  // Client: a session to resume; when empty, the context's session cache is asked (enable_session_cache()).
  SslSession session;
  std::size_t incoming_capacity = 32 * 1024;  // ciphertext received and not yet decrypted
  std::size_t outgoing_capacity = 32 * 1024;  // ciphertext produced and not yet sent
};

class TlsEngine {
 public:
  enum class Status {
    ok,          // the operation completed (or, for read/write, moved size > 0 bytes)
    want_read,   // more ciphertext from the peer is needed first
    want_write,  // the outgoing ring is full: send some of outgoing() first, then call again
    closed,      // read(): the peer sent close_notify, no more data will come
  };
  struct Result {
    std::size_t size;
    Status status;
  };

  // The role (client or server) is the context's. Throws std::invalid_argument when a client context checks host
  // names and options.server_hostname is empty, SslError when OpenSSL cannot set the connection up.
  TlsEngine(const SslContext& context, TlsEngineOptions options);
  ~TlsEngine();
  TlsEngine(const TlsEngine&) = delete;
  TlsEngine& operator=(const TlsEngine&) = delete;

  TlsRole role() const noexcept { return role_; }

  // --- handshake. Call until it returns ok; between calls, move ciphertext both ways. Throws SslError.
  // A client's first call produces the ClientHello in outgoing().
  Status do_handshake();
  bool handshake_done() const noexcept { return handshake_done_; }

  // --- ciphertext from the network
  // The free, contiguous part of the incoming ring (empty when the ring is full). Write received bytes at its
  // start, then call commit_incoming() with their count. The span is valid until the next call on the engine, and
  // no other engine call may come between incoming_space() and commit_incoming(). The ring's storage is taken
  // here when it has none (std::bad_alloc if none can be had); commit_incoming(0) gives it back.
  std::span<std::byte> incoming_space();
  void commit_incoming(std::size_t n) noexcept;
  // Whether the incoming ring is full (incoming_space() would be empty); takes no storage.
  bool incoming_full() const noexcept { return eof_fed_ || incoming_.full(); }
  // Copies as much of `data` as the incoming ring holds; returns how much it took (less when the ring is full).
  std::size_t feed(std::span<const std::byte> data);
  // The network reached end of file. Reading past what was received then ends with Status::closed if the peer
  // sent close_notify, and with SslError(Kind::truncated) if it did not.
  void feed_eof() noexcept;
  bool eof_fed() const noexcept { return eof_fed_; }
  std::size_t incoming_size() const noexcept;  // ciphertext received and not yet processed

  // --- ciphertext for the network
  // The pending ciphertext's first contiguous part (empty when none). Valid until the next call on the engine.
  std::span<const std::byte> outgoing() noexcept;
  // `n` bytes of outgoing() were sent; n <= outgoing().size().
  void consume_outgoing(std::size_t n) noexcept;
  std::size_t outgoing_size() const noexcept;  // all pending ciphertext (may be more than outgoing().size())

  // --- plaintext
  // Decrypts into `into`: {n > 0, ok}, or {0, want_read | want_write | closed}. Processes post-handshake messages
  // too (TLS 1.3 session tickets arrive this way). Throws SslError (Kind::truncated for EOF without close_notify).
  Result read(std::span<std::byte> into);
  // Plaintext already decrypted and waiting in OpenSSL (readable without more ciphertext).
  std::size_t pending_plaintext() const noexcept;
  // Encrypts a prefix of `data` into the outgoing ring: {n > 0, ok} or {0, want_write}. After want_write, send
  // ciphertext and call write() again starting with the same bytes (OpenSSL may hold an encrypted record of them
  // already; the bytes may have moved). Throws SslError, or std::logic_error after shutdown().
  Result write(std::span<const std::byte> data);

  // --- closing
  // Sends close_notify (once) and reports ok when the peer's close_notify was received too, want_read while it
  // was not, want_write when the outgoing ring is full. Before the handshake completed there is nothing to close
  // and it reports ok at once. Throws SslError.
  Status shutdown();
  bool close_notify_sent() const noexcept;
  bool close_notify_received() const noexcept;

  // --- what was negotiated (meaningful once handshake_done())
  std::string_view alpn_protocol() const noexcept;  // empty when none was agreed
  // The SNI name: on a server, what the client asked for (empty if nothing); on a client, what it sent.
  std::string_view server_name() const noexcept;
  std::string_view version() const noexcept;  // "TLSv1.3"
  std::string_view cipher() const noexcept;   // "TLS_AES_256_GCM_SHA384"
  bool session_reused() const noexcept;
  // The session to offer on a later connection (client). With TLS 1.3 it is resumable only once the server's
  // session tickets were read (they come after the handshake: call read() once the handshake is done).
  SslSession session() const;
  // The peer certificate's subject, one line ("CN = localhost"), or empty when the peer sent none.
  std::string peer_certificate_subject() const;
  const std::string& requested_server_hostname() const noexcept { return server_hostname_; }

  // Used by the OpenSSL callbacks (tls_engine.cpp); not for the engine's owner.
  void on_new_session(SslSession session);
  void switch_context(const SslContext& context);
  void set_callback_exception(std::exception_ptr e) noexcept { callback_exception_ = std::move(e); }

 private:
  [[noreturn]] void fail(int ret, std::string_view during);
  friend struct RingBio;

  std::shared_ptr<SslContext::Impl> context_;
  std::shared_ptr<SslContext::Impl> sni_context_;  // the context an SNI callback switched to, kept alive
  ssl_st* ssl_ = nullptr;  // owns the BIO (tls_engine.cpp's ring BIO) that reads incoming_ and writes outgoing_
  detail::EngineRing incoming_;
  detail::EngineRing outgoing_;
  std::string server_hostname_;
  std::exception_ptr callback_exception_;  // thrown by an SNI callback inside OpenSSL, rethrown after it returns
  TlsRole role_;
  bool handshake_done_ = false;
  bool eof_fed_ = false;
  bool offered_cached_session_ = false;
  bool failed_ = false;
};

// Installs the OpenSSL callbacks that call into engines (session tickets, SNI, ALPN selection) on a new SSL_CTX.
void install_engine_callbacks(ssl_ctx_st* ctx, TlsRole role);

}  // namespace tulipa
