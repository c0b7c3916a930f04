// TLS in steady state: once a connection is up and has carried some data, moving more data through it makes no
// allocation in tulipa (engine, SSL layer, socket transport, loop), and in OpenSSL none but the small WPACKET
// bookkeeping its 3.0 record layer allocates and frees for each record it writes (crypto/packet.c; measured at 4
// of 40 bytes per record on Debian 12's OpenSSL 3.0, reported as a test property). Counted in this executable only,
// with a replaced operator new and OpenSSL's memory hooks (installed before OpenSSL allocates anything).
#include <gtest/gtest.h>
#include <openssl/crypto.h>

#include <malloc.h>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <memory>
#include <new>
#include <string>
#include <vector>

#include "support/test_certs.hpp"
#include "tls/tls_engine.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/tls_net.hpp"

namespace {
std::atomic<long> g_allocations{0};  // everything but OpenSSL's per-record WPACKET bookkeeping
std::atomic<long> g_wpacket_allocations{0};
std::atomic<long> g_live_bytes{0};  // bytes allocated and not yet freed, by both operator new and OpenSSL

void count(const char* file) {
  if (file != nullptr && std::strstr(file, "crypto/packet.c") != nullptr) {
    g_wpacket_allocations.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
}
void* tracked_malloc(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (p) g_live_bytes.fetch_add(static_cast<long>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void tracked_free(void* p) {
  if (p) g_live_bytes.fetch_sub(static_cast<long>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
void* counting_malloc(std::size_t n, const char* file, int) {
  count(file);
  return tracked_malloc(n);
}
void* counting_realloc(void* p, std::size_t n, const char* file, int) {
  count(file);
  if (p) g_live_bytes.fetch_sub(static_cast<long>(malloc_usable_size(p)), std::memory_order_relaxed);
  void* q = std::realloc(p, n);
  if (q) g_live_bytes.fetch_add(static_cast<long>(malloc_usable_size(q)), std::memory_order_relaxed);
  return q;
}
void counting_free(void* p, const char*, int) { tracked_free(p); }

// Before main(), so before OpenSSL's first allocation (it refuses new hooks after that).
const bool g_hooks_installed = CRYPTO_set_mem_functions(counting_malloc, counting_realloc, counting_free) == 1;
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = tracked_malloc(n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { tracked_free(p); }
void operator delete(void* p, std::size_t) noexcept { tracked_free(p); }

namespace tulipa {
namespace {

using test::test_pki;

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

TEST(TlsAlloc, HooksAreInstalled) { EXPECT_TRUE(g_hooks_installed); }

TEST(TlsAlloc, EngineRoundTripsAllocateNothingInSteadyState) {
  auto client_ctx = SslContext::client();
  client_ctx.load_verify_locations(test_pki().ca_cert);
  TlsEngineOptions options;
  options.server_hostname = "localhost";
  TlsEngine client(client_ctx, options);
  TlsEngine server(SslContext::server(test_pki().server.cert, test_pki().server.key), {});
  for (int i = 0; i < 100 && !(client.handshake_done() && server.handshake_done()); ++i) {
    client.do_handshake();
    server.do_handshake();
    transfer(client, server);
    transfer(server, client);
  }
  ASSERT_TRUE(client.handshake_done() && server.handshake_done());
  std::byte msg[1024];
  std::memset(msg, 'm', sizeof msg);
  std::byte buf[4096];
  auto round_trip = [&] {
    ASSERT_EQ(client.write(msg).size, sizeof msg);
    transfer(client, server);
    std::size_t got = 0;
    for (auto r = server.read(buf); r.status == TlsEngine::Status::ok; r = server.read(buf)) got += r.size;
    ASSERT_EQ(got, sizeof msg);
    ASSERT_EQ(server.write(msg).size, sizeof msg);
    transfer(server, client);
    got = 0;
    for (auto r = client.read(buf); r.status == TlsEngine::Status::ok; r = client.read(buf)) got += r.size;
    ASSERT_EQ(got, sizeof msg);
  };
  for (int i = 0; i < 10; ++i) round_trip();  // warm-up: record buffers, tickets
  const long before = g_allocations.load();
  const long wpacket_before = g_wpacket_allocations.load();
  for (int i = 0; i < 1000; ++i) round_trip();
  EXPECT_EQ(g_allocations.load() - before, 0);
  ::testing::Test::RecordProperty("openssl_wpacket_allocations_per_record",
                                  std::to_string((g_wpacket_allocations.load() - wpacket_before) / 2000));
}

// The memory one established, idle TLS connection holds, per side (engine: the SSL object, its record buffers, the
// session with the peer's certificate, the two rings). Measured over 100 connections: 113 KiB with the default
// rings on Debian 12 (64 KiB of rings, ~50 KiB of OpenSSL). The budget asserted is the documented one
// (tls_engine.hpp: the rings plus at most 64 KiB of OpenSSL's).
TEST(TlsAlloc, BytesPerIdleConnection) {
  auto client_ctx = SslContext::client();
  client_ctx.load_verify_locations(test_pki().ca_cert);
  auto server_ctx = SslContext::server(test_pki().server.cert, test_pki().server.key);
  TlsEngineOptions options;
  options.server_hostname = "localhost";
  constexpr int n = 100;
  std::vector<std::unique_ptr<TlsEngine>> engines;
  engines.reserve(2 * n);
  const long before = g_live_bytes.load();
  for (int i = 0; i < n; ++i) {
    auto& client = *engines.emplace_back(std::make_unique<TlsEngine>(client_ctx, options));
    auto& server = *engines.emplace_back(std::make_unique<TlsEngine>(server_ctx, TlsEngineOptions{}));
    for (int k = 0; k < 100 && !(client.handshake_done() && server.handshake_done()); ++k) {
      client.do_handshake();
      server.do_handshake();
      transfer(client, server);
      transfer(server, client);
    }
    ASSERT_TRUE(client.handshake_done() && server.handshake_done());
    std::byte buf[256];
    ASSERT_EQ(client.write(std::as_bytes(std::span("hello", 5))).size, 5u);
    transfer(client, server);
    ASSERT_EQ(server.read(buf).size, 5u);
    (void)client.read(buf);  // tickets
  }
  const long per_side = (g_live_bytes.load() - before) / (2 * n);
  ::testing::Test::RecordProperty("bytes_per_idle_tls_connection_side", std::to_string(per_side));
  std::printf("bytes per idle TLS connection, per side: %ld\n", per_side);
  EXPECT_LT(per_side, 2 * 32 * 1024 + 64 * 1024);
}

// Ping-pong over loopback through the whole stack (socket transport, SSL layer, protocols), driven by the
// protocols themselves: each side answers every message, until the client has counted enough round trips.
class PingPong : public Protocol {
 public:
  PingPong(long* rounds, long limit) : rounds_(rounds), limit_(limit) {}
  void connection_made(Transport& t) override {
    t_ = &t;
    if (rounds_ != nullptr) t.write(std::string_view(msg_, sizeof msg_));
  }
  void data_received(std::span<const std::byte> data) override {
    pending_ += data.size();
    if (pending_ < sizeof msg_) return;
    pending_ = 0;
    if (rounds_ != nullptr && ++*rounds_ >= limit_) return;
    t_->write(std::string_view(msg_, sizeof msg_));
  }

 private:
  long* rounds_;  // null on the server side (it only answers)
  long limit_;
  Transport* t_ = nullptr;
  std::size_t pending_ = 0;
  char msg_[512] = {};
};

TEST(TlsAlloc, SocketRoundTripsThroughTheSslLayerAllocateNothingInSteadyState) {
  EventLoop loop;
  Server server = create_server(
      loop, [] { return std::make_unique<PingPong>(nullptr, 0); }, "127.0.0.1", 0,
      SslContext::server(test_pki().server.cert, test_pki().server.key));
  auto client_ctx = SslContext::client();
  client_ctx.load_verify_locations(test_pki().ca_cert);
  long rounds = 0;
  long limit = 200;
  Transport* transport = nullptr;
  create_connection(
      loop, [&] { return std::make_unique<PingPong>(&rounds, limit); }, "127.0.0.1", server.sockets().at(0).port(),
      client_ctx, [&](Transport* t, std::exception_ptr) { transport = t; }, {},
      SslOptions{.server_hostname = "localhost"});
  while (rounds < 100) loop.run_once();  // warm-up
  const long before = g_allocations.load();
  const long rounds_before = rounds;
  while (rounds < limit) loop.run_once();
  const long allocations = g_allocations.load() - before;
  EXPECT_EQ(rounds - rounds_before, 100);
  EXPECT_EQ(allocations, 0);
  ASSERT_NE(transport, nullptr);
  transport->abort();
  server.close();
  for (int i = 0; i < 10; ++i) {
    loop.call_soon([] {});
    loop.run_once();
  }
}

}  // namespace
}  // namespace tulipa
