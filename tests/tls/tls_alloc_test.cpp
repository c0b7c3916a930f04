// TLS in steady state: once a connection is up and has carried some data, moving more data through it makes no
// allocation in tulipa (engine, SSL layer, socket transport, loop), and in OpenSSL none but the small WPACKET
// bookkeeping its 3.0 record layer allocates and frees for each record it writes (crypto/packet.c; measured at 4
// of 40 bytes per record on Debian 12's OpenSSL 3.0, reported as a test property) and the record buffers it takes
// and gives back around each record (ssl/record/ssl3_buffer.c: SSL_MODE_RELEASE_BUFFERS, so that an idle
// connection holds none; also a property). Our own rings come from mmap'd blocks through a per-thread reserve
// (engine_ring.hpp): no allocation either. Counted in this executable only,
// with a replaced operator new and OpenSSL's memory hooks (installed before OpenSSL allocates anything).
#include <gtest/gtest.h>
#include <openssl/crypto.h>

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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
std::atomic<long> g_record_buffer_allocations{0};
std::atomic<long> g_live_bytes{0};  // bytes allocated and not yet freed, by both operator new and OpenSSL

void count(const char* file) {
  if (file != nullptr && std::strstr(file, "crypto/packet.c") != nullptr) {
    g_wpacket_allocations.fetch_add(1, std::memory_order_relaxed);
  } else if (file != nullptr && std::strstr(file, "ssl3_buffer.c") != nullptr) {
    g_record_buffer_allocations.fetch_add(1, std::memory_order_relaxed);
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
  const long record_buffers_before = g_record_buffer_allocations.load();
  for (int i = 0; i < 1000; ++i) round_trip();
  EXPECT_EQ(g_allocations.load() - before, 0);
  ::testing::Test::RecordProperty("openssl_wpacket_allocations_per_record",
                                  std::to_string((g_wpacket_allocations.load() - wpacket_before) / 2000));
  ::testing::Test::RecordProperty("openssl_record_buffer_allocations_per_record",
                                  std::to_string((g_record_buffer_allocations.load() - record_buffers_before) / 2000));
}

// The memory one established, idle TLS connection holds, per side (engine: the SSL object and its session; the
// rings and OpenSSL's record buffers are released while idle, see tls_engine.hpp). Measured over 100
// connections. The budgets asserted are issue 10's goal for a server's connection (16 KiB; 14.1 KiB measured) and,
// for a client's, its session (with the server's parsed certificate and chain) and its verified chain: 19 KiB
// measured on Debian 12's OpenSSL 3.0, 20 KiB asserted (35 KiB before the engine freed the 16 KiB read buffer that
// reading the TLS 1.3 session tickets left, which SSL_MODE_RELEASE_BUFFERS does not release).
TEST(TlsAlloc, BytesPerIdleConnection) {
  auto client_ctx = SslContext::client();
  client_ctx.load_verify_locations(test_pki().ca_cert);
  auto server_ctx = SslContext::server(test_pki().server.cert, test_pki().server.key);
  TlsEngineOptions options;
  options.server_hostname = "localhost";
  constexpr int n = 100;
  std::vector<std::unique_ptr<TlsEngine>> clients, servers;
  clients.reserve(n);
  servers.reserve(n);
  const long before = g_live_bytes.load();
  for (int i = 0; i < n; ++i) {
    auto& client = *clients.emplace_back(std::make_unique<TlsEngine>(client_ctx, options));
    auto& server = *servers.emplace_back(std::make_unique<TlsEngine>(server_ctx, TlsEngineOptions{}));
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
    EXPECT_EQ(client.incoming_size() + client.outgoing_size() + server.incoming_size() + server.outgoing_size(), 0u);
  }
  const long both = g_live_bytes.load() - before;
  clients.clear();
  const long per_server = (g_live_bytes.load() - before) / n;
  const long per_client = both / n - per_server;
  ::testing::Test::RecordProperty("bytes_per_idle_tls_server_connection", std::to_string(per_server));
  ::testing::Test::RecordProperty("bytes_per_idle_tls_client_connection", std::to_string(per_client));
  std::printf("bytes per idle TLS connection: server side %ld, client side %ld\n", per_server, per_client);
  EXPECT_LE(per_server, 16 * 1024);
  EXPECT_LE(per_client, 20 * 1024);
}

// A server's connection that has sent nothing yet (a scanner, a stalled client, a connect burst) holds no TLS
// engine: the SSL object and the rings are made when the first bytes arrive (ssl_protocol.hpp). What it holds is
// the socket transport, the TLS layer, the application protocol and the handshake timer. The budget asserted is
// 2 KiB (measured: about 1 KiB); an engine alone is 14 KiB.
struct Silent : Protocol {};

TEST(TlsAlloc, SilentServerConnectionsHoldNoEngine) {
  EventLoop loop;
  int accepted = 0;
  Server server = create_server(
      loop,
      [&] {
        ++accepted;
        return std::make_unique<Silent>();
      },
      "127.0.0.1", 0, SslContext::server(test_pki().server.cert, test_pki().server.key));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server.sockets().at(0).port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> fds;
  auto connect_batch = [&](int n) {
    const int target = accepted + n;
    for (int i = 0; i < n; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
      fds.push_back(fd);
    }
    while (accepted < target) loop.run_once();
  };
  connect_batch(50);  // warm-up: pools, the loop's tables
  constexpr int n = 200;
  const long before = g_live_bytes.load();
  connect_batch(n);
  const long per_connection = (g_live_bytes.load() - before) / n;
  ::testing::Test::RecordProperty("bytes_per_silent_tls_server_connection", std::to_string(per_connection));
  std::printf("bytes per silent (not yet handshaken) TLS server connection: %ld\n", per_connection);
  EXPECT_LE(per_connection, 2 * 1024);
  for (int fd : fds) ::close(fd);
  server.close();
  // The server's connections see EOF before any byte and end (no engine was ever made for them).
  for (int i = 0; i < 20; ++i) {
    loop.call_soon([] {});
    loop.run_once();
  }
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
