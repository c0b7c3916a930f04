// The TLS engine's costs, in memory (no sockets, so what is measured is OpenSSL plus tulipa's glue):
//   - a full TLS 1.3 handshake (ECDSA P-256 certificate, chain verified, host name checked), and a resumed one;
//   - bulk data one way (encrypt + decrypt + the ring copies), in bytes per second, for several write sizes.
// Compare with `openssl speed -evp aes-256-gcm` on the same machine for the cipher's own ceiling.
// Then over loopback sockets, one loop running both ends: 512-byte ping-pong round trips through the whole stack
// (socket transport + SSL layer + protocols), next to the same without TLS.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "tls/tls_engine.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/tls.hpp"
#include "tulipa/tls_net.hpp"

namespace {

using tulipa::SslContext;
using tulipa::TlsEngine;
using tulipa::TlsEngineOptions;

// A self-signed "localhost" certificate in a temporary directory (the client trusts it directly).
struct Certs {
  std::string dir, cert, key;
  Certs() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tulipa-tls-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
    dir = tmpl;
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pkey);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    for (auto [nid, value] :
         {std::pair{NID_basic_constraints, "critical,CA:TRUE"}, std::pair{NID_subject_alt_name, "DNS:localhost"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(x, pkey, EVP_sha256());
    FILE* f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
  }
  ~Certs() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

const Certs& certs() {
  static const Certs c;
  return c;
}

std::size_t transfer(TlsEngine& from, TlsEngine& to) {
  std::size_t moved = 0;
  for (;;) {
    auto out = from.outgoing();
    auto space = to.incoming_space();
    if (out.empty() || space.empty()) return moved;
    const std::size_t n = std::min(out.size(), space.size());
    std::memcpy(space.data(), out.data(), n);
    to.commit_incoming(n);
    from.consume_outgoing(n);
    moved += n;
  }
}

void handshake(TlsEngine& client, TlsEngine& server) {
  while (!client.handshake_done() || !server.handshake_done()) {
    client.do_handshake();
    server.do_handshake();
    if (transfer(client, server) + transfer(server, client) == 0 &&
        !(client.handshake_done() && server.handshake_done())) {
      throw std::runtime_error("handshake stalled");
    }
  }
  // The TLS 1.3 tickets arrive after the handshake.
  transfer(server, client);
  std::byte buf[64];
  (void)client.read(buf);
}

TlsEngineOptions localhost() {
  TlsEngineOptions o;
  o.server_hostname = "localhost";
  return o;
}

void BM_tls_handshake_full(benchmark::State& state) {
  auto client_ctx = SslContext::client();
  client_ctx.load_verify_locations(certs().cert);
  auto server_ctx = SslContext::server(certs().cert, certs().key);
  for (auto _ : state) {
    TlsEngine client(client_ctx, localhost());
    TlsEngine server(server_ctx, {});
    handshake(client, server);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_tls_handshake_full)->Unit(benchmark::kMicrosecond);

void BM_tls_handshake_resumed(benchmark::State& state) {
  auto client_ctx = SslContext::client();
  client_ctx.load_verify_locations(certs().cert);
  client_ctx.enable_session_cache();
  auto server_ctx = SslContext::server(certs().cert, certs().key);
  bool all_resumed = true;
  {
    TlsEngine client(client_ctx, localhost());
    TlsEngine server(server_ctx, {});
    handshake(client, server);
  }
  for (auto _ : state) {
    TlsEngine client(client_ctx, localhost());
    TlsEngine server(server_ctx, {});
    handshake(client, server);
    all_resumed = all_resumed && client.session_reused();
  }
  if (!all_resumed) state.SkipWithError("a handshake was not resumed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_tls_handshake_resumed)->Unit(benchmark::kMicrosecond);

// One direction, `write size` bytes per write() call, 1 MiB per iteration.
void BM_tls_bulk(benchmark::State& state) {
  auto client_ctx = SslContext::client();
  client_ctx.load_verify_locations(certs().cert);
  auto server_ctx = SslContext::server(certs().cert, certs().key);
  TlsEngine client(client_ctx, localhost());
  TlsEngine server(server_ctx, {});
  handshake(client, server);
  const auto write_size = static_cast<std::size_t>(state.range(0));
  std::vector<std::byte> data(write_size, std::byte{'x'});
  std::vector<std::byte> sink(64 * 1024);
  constexpr std::size_t per_iteration = 1 << 20;
  for (auto _ : state) {
    std::size_t sent = 0, received = 0;
    while (received < per_iteration) {
      if (sent < per_iteration) {
        auto r = client.write(data);
        if (r.status == TlsEngine::Status::ok) sent += r.size;
      }
      transfer(client, server);
      for (;;) {
        auto r = server.read(sink);
        if (r.status != TlsEngine::Status::ok) break;
        received += r.size;
      }
    }
  }
  state.SetBytesProcessed(state.iterations() * per_iteration);
}
BENCHMARK(BM_tls_bulk)->Arg(64)->Arg(1024)->Arg(16384)->Arg(65536);

// Answers every 512-byte message; the client side counts round trips.
class PingPong : public tulipa::Protocol {
 public:
  explicit PingPong(long* rounds) : rounds_(rounds) {}
  void connection_made(tulipa::Transport& t) override { t_ = &t; }
  void data_received(std::span<const std::byte> data) override {
    pending_ += data.size();
    if (pending_ < sizeof msg_) return;
    pending_ = 0;
    if (rounds_ != nullptr) ++*rounds_;
    if (rounds_ == nullptr || go_) t_->write(std::string_view(msg_, sizeof msg_));
  }
  void kick() { t_->write(std::string_view(msg_, sizeof msg_)); }
  bool go_ = true;

 private:
  long* rounds_;
  tulipa::Transport* t_ = nullptr;
  std::size_t pending_ = 0;
  char msg_[512] = {};
};

void ping_pong(benchmark::State& state, bool tls) {
  tulipa::EventLoop loop;
  auto server_ctx = SslContext::server(certs().cert, certs().key);
  auto client_ctx = SslContext::client();
  client_ctx.load_verify_locations(certs().cert);
  auto server_factory = [] { return std::make_unique<PingPong>(nullptr); };
  tulipa::Server server = tls ? tulipa::create_server(loop, server_factory, "127.0.0.1", 0, server_ctx)
                              : tulipa::create_server(loop, server_factory, "127.0.0.1", 0);
  const auto port = server.sockets().at(0).port();
  long rounds = 0;
  PingPong* client = nullptr;
  tulipa::Transport* transport = nullptr;
  auto client_factory = [&] {
    auto p = std::make_unique<PingPong>(&rounds);
    client = p.get();
    return p;
  };
  auto done = [&](tulipa::Transport* t, std::exception_ptr) { transport = t; };
  if (tls) {
    tulipa::SslOptions o;
    o.server_hostname = "localhost";
    tulipa::create_connection(loop, client_factory, "127.0.0.1", port, client_ctx, done, {}, o);
  } else {
    tulipa::create_connection(loop, client_factory, "127.0.0.1", port, done);
  }
  while (transport == nullptr) loop.run_once();
  client->kick();
  constexpr long batch = 1000;
  for (auto _ : state) {
    const long target = rounds + batch;
    while (rounds < target) loop.run_once();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  client->go_ = false;
  transport->abort();
  server.close();
  for (int i = 0; i < 10; ++i) {
    loop.call_soon([] {});
    loop.run_once();
  }
}

void BM_socket_ping_pong_plain(benchmark::State& state) { ping_pong(state, false); }
BENCHMARK(BM_socket_ping_pong_plain)->Unit(benchmark::kMillisecond);
void BM_socket_ping_pong_tls(benchmark::State& state) { ping_pong(state, true); }
BENCHMARK(BM_socket_ping_pong_tls)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
