// TlsEngine and SslContext: two engines (a client and a server) pumped against each other in memory, with
// certificates generated at run time (tests/support/test_certs). No sockets: the engine is sans-I/O.
#include "tls/tls_engine.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "support/test_certs.hpp"
#include "tulipa/tls.hpp"

namespace tulipa {
namespace {

using test::test_pki;
using Status = TlsEngine::Status;

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

// Moves pending ciphertext from one engine into the other, as much as the receiver takes. Returns bytes moved.
std::size_t transfer(TlsEngine& from, TlsEngine& to) {
  std::size_t moved = 0;
  for (;;) {
    auto out = from.outgoing();
    if (out.empty()) break;
    auto space = to.incoming_space();
    if (space.empty()) break;
    const std::size_t n = std::min(out.size(), space.size());
    std::memcpy(space.data(), out.data(), n);
    to.commit_incoming(n);
    from.consume_outgoing(n);
    moved += n;
  }
  return moved;
}

struct Outcome {
  std::optional<SslError> client_error;
  std::optional<SslError> server_error;
  bool ok() const { return !client_error && !server_error; }
};

// Drives both handshakes to the end. A side that fails stops, but what it has to send (its alert) still goes to the
// other side, which then fails too: the test sees both errors.
Outcome handshake(TlsEngine& client, TlsEngine& server) {
  Outcome outcome;
  for (int round = 0; round < 100; ++round) {
    if (!outcome.client_error && !client.handshake_done()) {
      try {
        client.do_handshake();
      } catch (const SslError& e) {
        outcome.client_error = e;
      }
    }
    if (!outcome.server_error && !server.handshake_done()) {
      try {
        server.do_handshake();
      } catch (const SslError& e) {
        outcome.server_error = e;
      }
    }
    const std::size_t moved = transfer(client, server) + transfer(server, client);
    const bool client_settled = client.handshake_done() || outcome.client_error;
    const bool server_settled = server.handshake_done() || outcome.server_error;
    if (moved == 0 && client_settled && server_settled) return outcome;
    if (moved == 0 && (outcome.client_error || outcome.server_error)) return outcome;  // the other side waits forever
  }
  ADD_FAILURE() << "handshake did not settle";
  return outcome;
}

// Reads everything decryptable now.
std::string read_all(TlsEngine& engine, Status* last = nullptr) {
  std::string out;
  std::byte buf[4096];
  for (;;) {
    auto r = engine.read(buf);
    if (r.status != Status::ok) {
      if (last) *last = r.status;
      return out;
    }
    out.append(reinterpret_cast<const char*>(buf), r.size);
  }
}

void write_all(TlsEngine& engine, std::string_view data) {
  auto r = engine.write(bytes(data));
  ASSERT_EQ(r.status, Status::ok);
  ASSERT_EQ(r.size, data.size());
}

SslContext trusting_client() {
  auto ctx = SslContext::client();
  ctx.load_verify_locations(test_pki().ca_cert);
  return ctx;
}

SslContext localhost_server() { return SslContext::server(test_pki().server.cert, test_pki().server.key); }

TlsEngineOptions to_host(std::string host) {
  TlsEngineOptions o;
  o.server_hostname = std::move(host);
  return o;
}

// ------------------------------------------------------------------------------------------------ basics

TEST(TlsEngine, HandshakeAndDataBothWays) {
  TlsEngine client(trusting_client(), to_host("localhost"));
  TlsEngine server(localhost_server(), {});
  EXPECT_EQ(client.role(), TlsRole::client);
  EXPECT_EQ(server.role(), TlsRole::server);
  ASSERT_TRUE(handshake(client, server).ok());
  EXPECT_TRUE(client.handshake_done());
  EXPECT_TRUE(server.handshake_done());
  EXPECT_EQ(client.version(), "TLSv1.3");
  EXPECT_FALSE(client.cipher().empty());
  EXPECT_NE(client.peer_certificate_subject().find("CN = localhost"), std::string::npos)
      << client.peer_certificate_subject();
  EXPECT_EQ(server.peer_certificate_subject(), "");  // no client certificate asked for

  write_all(client, "hello from the client");
  transfer(client, server);
  EXPECT_EQ(read_all(server), "hello from the client");
  write_all(server, "hello from the server");
  transfer(server, client);
  EXPECT_EQ(read_all(client), "hello from the server");
}

TEST(TlsEngine, Tls12WorksToo) {
  auto client_ctx = trusting_client();
  client_ctx.set_maximum_version(TlsVersion::tls1_2);
  TlsEngine client(client_ctx, to_host("localhost"));
  TlsEngine server(localhost_server(), {});
  ASSERT_TRUE(handshake(client, server).ok());
  EXPECT_EQ(server.version(), "TLSv1.2");
  write_all(client, "ping");
  transfer(client, server);
  EXPECT_EQ(read_all(server), "ping");
}

TEST(TlsEngine, MinimumVersionRefusesOlderPeers) {
  auto client_ctx = trusting_client();
  client_ctx.set_maximum_version(TlsVersion::tls1_2);
  auto server_ctx = localhost_server();
  server_ctx.set_minimum_version(TlsVersion::tls1_3);
  TlsEngine client(client_ctx, to_host("localhost"));
  TlsEngine server(server_ctx, {});
  auto outcome = handshake(client, server);
  ASSERT_TRUE(outcome.server_error);
  EXPECT_EQ(outcome.server_error->reason(), "unsupported protocol");
  ASSERT_TRUE(outcome.client_error);
  EXPECT_EQ(outcome.client_error->kind(), SslError::Kind::protocol);
}

TEST(TlsEngine, EightMebibytesBothWaysArriveIntact) {
  TlsEngine client(trusting_client(), to_host("localhost"));
  TlsEngine server(localhost_server(), {});
  ASSERT_TRUE(handshake(client, server).ok());

  std::vector<std::byte> up(8 << 20), down(8 << 20);
  std::mt19937_64 rng(42);
  for (auto& b : up) b = std::byte(rng());
  for (auto& b : down) b = std::byte(rng());
  std::vector<std::byte> got_up, got_down;
  got_up.reserve(up.size());
  got_down.reserve(down.size());
  std::size_t sent_up = 0, sent_down = 0;
  std::byte buf[16384];
  auto drain = [&](TlsEngine& e, std::vector<std::byte>& into) {
    for (;;) {
      auto r = e.read(buf);
      if (r.status != Status::ok) return;
      into.insert(into.end(), buf, buf + r.size);
    }
  };
  int rounds = 0;
  while (got_up.size() < up.size() || got_down.size() < down.size()) {
    ASSERT_LT(++rounds, 100000) << "no progress";
    // Writers offer up to 64 KiB at a time; the 32 KiB outgoing ring makes them stop with want_write.
    while (sent_up < up.size()) {
      auto r = client.write(std::span(up).subspan(sent_up, std::min<std::size_t>(65536, up.size() - sent_up)));
      if (r.status == Status::want_write) break;
      ASSERT_EQ(r.status, Status::ok);
      sent_up += r.size;
    }
    while (sent_down < down.size()) {
      auto r = server.write(std::span(down).subspan(sent_down, std::min<std::size_t>(65536, down.size() - sent_down)));
      if (r.status == Status::want_write) break;
      ASSERT_EQ(r.status, Status::ok);
      sent_down += r.size;
    }
    transfer(client, server);
    transfer(server, client);
    drain(server, got_up);
    drain(client, got_down);
  }
  EXPECT_TRUE(got_up == up);
  EXPECT_TRUE(got_down == down);
}

TEST(TlsEngine, FullRingsPushBack) {
  TlsEngineOptions small = to_host("localhost");
  small.outgoing_capacity = 4096;
  TlsEngine client(trusting_client(), small);
  TlsEngineOptions server_small;
  server_small.incoming_capacity = 4096;
  TlsEngine server(localhost_server(), server_small);
  ASSERT_TRUE(handshake(client, server).ok());

  // A 16 KiB record does not fit a 4 KiB outgoing ring: the write waits for the ring to be drained.
  std::string big(16384, 'x');
  auto r = client.write(bytes(big));
  EXPECT_EQ(r.status, Status::want_write);
  EXPECT_EQ(r.size, 0u);
  EXPECT_EQ(client.outgoing_size(), 4096u);
  // The server's incoming ring takes 4 KiB at most; feed() says how much it took.
  std::string wire(client.outgoing_size(), '\0');
  std::size_t copied = 0;
  for (auto out = client.outgoing(); !out.empty(); out = client.outgoing()) {
    std::memcpy(wire.data() + copied, out.data(), out.size());
    copied += out.size();
    client.consume_outgoing(out.size());
  }
  EXPECT_EQ(server.feed(bytes(wire)), 4096u);
  EXPECT_EQ(server.feed(bytes("more")), 0u);
  EXPECT_EQ(server.incoming_size(), 4096u);

  // Pumping to the end delivers everything: the retried write (same bytes) completes.
  std::string received;
  std::size_t sent = 0;
  for (int i = 0; i < 1000 && received.size() < big.size(); ++i) {
    if (sent < big.size()) {
      auto w = client.write(bytes(std::string_view(big).substr(sent)));
      if (w.status == Status::ok) sent += w.size;
    }
    transfer(client, server);
    received += read_all(server);
  }
  EXPECT_EQ(received, big);
}

// ------------------------------------------------------------------------------------------------ ALPN, SNI

TEST(TlsEngine, AlpnPicksTheServersPreferenceAmongTheClientsOffer) {
  auto client_ctx = trusting_client();
  client_ctx.set_alpn_protocols({"h2", "http/1.1"});
  auto server_ctx = localhost_server();
  server_ctx.set_alpn_protocols({"http/1.1", "h2"});
  TlsEngine client(client_ctx, to_host("localhost"));
  TlsEngine server(server_ctx, {});
  ASSERT_TRUE(handshake(client, server).ok());
  EXPECT_EQ(client.alpn_protocol(), "http/1.1");
  EXPECT_EQ(server.alpn_protocol(), "http/1.1");
}

TEST(TlsEngine, AlpnWithoutCommonProtocolGoesOnWithout) {
  auto client_ctx = trusting_client();
  client_ctx.set_alpn_protocols({"h2"});
  auto server_ctx = localhost_server();
  server_ctx.set_alpn_protocols({"smtp"});
  TlsEngine client(client_ctx, to_host("localhost"));
  TlsEngine server(server_ctx, {});
  ASSERT_TRUE(handshake(client, server).ok());
  EXPECT_EQ(client.alpn_protocol(), "");
  EXPECT_EQ(server.alpn_protocol(), "");
}

TEST(TlsEngine, AlpnRejectsBadNames) {
  auto ctx = SslContext::client();
  EXPECT_THROW(ctx.set_alpn_protocols({""}), std::invalid_argument);
  EXPECT_THROW(ctx.set_alpn_protocols({std::string(256, 'a')}), std::invalid_argument);
}

TEST(TlsEngine, ServerSeesTheRequestedNameThroughSni) {
  auto server_ctx = localhost_server();
  std::vector<std::string> seen;
  server_ctx.set_sni_callback([&](SniRequest& request) { seen.emplace_back(request.server_name()); });
  TlsEngine client(trusting_client(), to_host("localhost"));
  TlsEngine server(server_ctx, {});
  ASSERT_TRUE(handshake(client, server).ok());
  EXPECT_EQ(seen, std::vector<std::string>{"localhost"});
  EXPECT_EQ(server.server_name(), "localhost");
  EXPECT_EQ(client.server_name(), "localhost");
}

TEST(TlsEngine, IpAddressIsVerifiedButNotSentAsSni) {
  auto server_ctx = localhost_server();
  std::vector<std::string> seen;
  server_ctx.set_sni_callback([&](SniRequest& request) { seen.emplace_back(request.server_name()); });
  TlsEngine client(trusting_client(), to_host("127.0.0.1"));
  TlsEngine server(server_ctx, {});
  ASSERT_TRUE(handshake(client, server).ok());
  EXPECT_EQ(seen, std::vector<std::string>{""});
  EXPECT_EQ(server.server_name(), "");
}

TEST(TlsEngine, SniCallbackCanSwitchTheCertificate) {
  // The default certificate names the wrong host; the callback switches to the localhost one.
  auto default_ctx = SslContext::server(test_pki().wrong_host.cert, test_pki().wrong_host.key);
  auto localhost_ctx = localhost_server();
  localhost_ctx.set_alpn_protocols({"h2"});
  default_ctx.set_sni_callback([&](SniRequest& request) {
    if (request.server_name() == "localhost") request.use_context(localhost_ctx);
  });
  auto client_ctx = trusting_client();
  client_ctx.set_alpn_protocols({"h2"});
  TlsEngine client(client_ctx, to_host("localhost"));
  TlsEngine server(default_ctx, {});
  ASSERT_TRUE(handshake(client, server).ok());
  EXPECT_NE(client.peer_certificate_subject().find("CN = localhost"), std::string::npos);
  EXPECT_EQ(server.alpn_protocol(), "h2");  // the switched-to context's ALPN list applies
}

TEST(TlsEngine, SniCallbackCanRefuse) {
  auto server_ctx = localhost_server();
  server_ctx.set_sni_callback([](SniRequest& request) { request.reject(); });
  TlsEngine client(trusting_client(), to_host("localhost"));
  TlsEngine server(server_ctx, {});
  auto outcome = handshake(client, server);
  ASSERT_TRUE(outcome.client_error);
  EXPECT_EQ(outcome.client_error->reason(), "tlsv1 unrecognized name");
  ASSERT_TRUE(outcome.server_error);
}

TEST(TlsEngine, SniCallbackExceptionSurfacesFromTheHandshake) {
  auto server_ctx = localhost_server();
  server_ctx.set_sni_callback([](SniRequest&) { throw std::runtime_error("no such tenant"); });
  TlsEngine client(trusting_client(), to_host("localhost"));
  TlsEngine server(server_ctx, {});
  client.do_handshake();
  transfer(client, server);
  try {
    server.do_handshake();
    FAIL() << "the handshake went on";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "no such tenant");
  }
}

// ------------------------------------------------------------------------------------------------ sessions

// A full connection: handshake, then the client reads so that TLS 1.3 tickets (sent after the handshake) arrive.
struct Connection {
  TlsEngine client;
  TlsEngine server;
  Connection(const SslContext& client_ctx, const SslContext& server_ctx, TlsEngineOptions options)
      : client(client_ctx, std::move(options)), server(server_ctx, {}) {
    auto outcome = handshake(client, server);
    EXPECT_TRUE(outcome.ok());
    transfer(server, client);
    read_all(client);
  }
};

TEST(TlsEngine, SessionCacheResumesTls13) {
  auto client_ctx = trusting_client();
  client_ctx.enable_session_cache();
  auto server_ctx = localhost_server();
  {
    Connection first(client_ctx, server_ctx, to_host("localhost"));
    EXPECT_FALSE(first.client.session_reused());
    EXPECT_EQ(client_ctx.session_cache_size(), 1u);
    EXPECT_TRUE(client_ctx.cached_session("localhost").is_resumable());
  }
  Connection second(client_ctx, server_ctx, to_host("localhost"));
  EXPECT_TRUE(second.client.session_reused());
  EXPECT_TRUE(second.server.session_reused());
  EXPECT_EQ(second.client.peer_certificate_subject().find("CN = localhost") != std::string::npos, true);
  // Another name has no session: a full handshake.
  Connection other(client_ctx, server_ctx, to_host("127.0.0.1"));
  EXPECT_FALSE(other.client.session_reused());
}

TEST(TlsEngine, ExplicitSessionResumesTls12) {
  auto client_ctx = trusting_client();
  client_ctx.set_maximum_version(TlsVersion::tls1_2);
  auto server_ctx = localhost_server();
  SslSession session;
  {
    Connection first(client_ctx, server_ctx, to_host("localhost"));
    EXPECT_FALSE(first.client.session_reused());
    session = first.client.session();
  }
  ASSERT_TRUE(session.is_resumable());
  EXPECT_EQ(client_ctx.session_cache_size(), 0u);  // the cache is off unless enabled
  TlsEngineOptions options = to_host("localhost");
  options.session = session;
  Connection second(client_ctx, server_ctx, std::move(options));
  EXPECT_TRUE(second.client.session_reused());
  EXPECT_EQ(second.client.version(), "TLSv1.2");
}

TEST(TlsEngine, WithoutSessionNoResumption) {
  auto client_ctx = trusting_client();
  auto server_ctx = localhost_server();
  Connection first(client_ctx, server_ctx, to_host("localhost"));
  Connection second(client_ctx, server_ctx, to_host("localhost"));
  EXPECT_FALSE(second.client.session_reused());
}

TEST(TlsEngine, SessionCacheIsForClients) {
  auto server_ctx = localhost_server();
  EXPECT_THROW(server_ctx.enable_session_cache(), std::logic_error);
}

// ------------------------------------------------------------------------------------------------ verification

TEST(TlsEngine, ClientVerifiesByDefaultAgainstTheSystemStore) {
  // client() trusts the system's CAs only: the test CA is not one of them.
  auto client_ctx = SslContext::client();
  EXPECT_TRUE(client_ctx.verifies_peer());
  EXPECT_TRUE(client_ctx.check_hostname());
  TlsEngine client(client_ctx, to_host("localhost"));
  TlsEngine server(localhost_server(), {});
  auto outcome = handshake(client, server);
  ASSERT_TRUE(outcome.client_error);
  EXPECT_EQ(outcome.client_error->kind(), SslError::Kind::certificate);
  EXPECT_EQ(outcome.client_error->reason(), "certificate verify failed");
}

TEST(TlsEngine, ClientNeedsAHostNameToCheck) {
  EXPECT_THROW(TlsEngine(SslContext::client(), {}), std::invalid_argument);
}

TEST(TlsEngine, UntrustedCaIsRejected) {
  TlsEngine client(trusting_client(), to_host("localhost"));
  TlsEngine server(SslContext::server(test_pki().untrusted.cert, test_pki().untrusted.key), {});
  auto outcome = handshake(client, server);
  ASSERT_TRUE(outcome.client_error);
  EXPECT_EQ(outcome.client_error->kind(), SslError::Kind::certificate);
  EXPECT_EQ(outcome.client_error->reason(), "certificate verify failed");
  EXPECT_EQ(outcome.client_error->verify_message(), "unable to get local issuer certificate");
  EXPECT_STREQ(outcome.client_error->what(), "certificate verify failed: unable to get local issuer certificate");
  // The client told the server why, with an alert.
  ASSERT_TRUE(outcome.server_error);
  EXPECT_EQ(outcome.server_error->kind(), SslError::Kind::protocol);
  EXPECT_EQ(outcome.server_error->reason(), "tlsv1 alert unknown ca");
}

TEST(TlsEngine, WrongHostNameIsRejected) {
  TlsEngine client(trusting_client(), to_host("localhost"));
  TlsEngine server(SslContext::server(test_pki().wrong_host.cert, test_pki().wrong_host.key), {});
  auto outcome = handshake(client, server);
  ASSERT_TRUE(outcome.client_error);
  EXPECT_EQ(outcome.client_error->kind(), SslError::Kind::certificate);
  EXPECT_EQ(outcome.client_error->verify_message(), "hostname mismatch");
}

TEST(TlsEngine, WrongIpAddressIsRejected) {
  TlsEngine client(trusting_client(), to_host("127.0.0.2"));
  TlsEngine server(localhost_server(), {});
  auto outcome = handshake(client, server);
  ASSERT_TRUE(outcome.client_error);
  EXPECT_EQ(outcome.client_error->verify_message(), "IP address mismatch");
}

TEST(TlsEngine, ExpiredCertificateIsRejected) {
  TlsEngine client(trusting_client(), to_host("localhost"));
  TlsEngine server(SslContext::server(test_pki().expired.cert, test_pki().expired.key), {});
  auto outcome = handshake(client, server);
  ASSERT_TRUE(outcome.client_error);
  EXPECT_EQ(outcome.client_error->kind(), SslError::Kind::certificate);
  EXPECT_EQ(outcome.client_error->verify_message(), "certificate has expired");
  ASSERT_TRUE(outcome.server_error);
  EXPECT_EQ(outcome.server_error->reason(), "sslv3 alert certificate expired");
}

TEST(TlsEngine, VerificationOffAcceptsAnyCertificateWhenAskedExplicitly) {
  auto client_ctx = SslContext::client();
  client_ctx.disable_verification();
  EXPECT_FALSE(client_ctx.verifies_peer());
  EXPECT_FALSE(client_ctx.check_hostname());
  for (const auto* pair : {&test_pki().untrusted, &test_pki().expired, &test_pki().wrong_host}) {
    TlsEngine client(client_ctx, {});  // no host name needed either
    TlsEngine server(SslContext::server(pair->cert, pair->key), {});
    EXPECT_TRUE(handshake(client, server).ok()) << pair->cert;
  }
}

TEST(TlsEngine, CheckHostnameTurnsVerificationBackOn) {
  auto client_ctx = SslContext::client();
  client_ctx.disable_verification();
  client_ctx.set_check_hostname(true);
  EXPECT_TRUE(client_ctx.verifies_peer());
  client_ctx.load_verify_pem(test_pki().ca_pem);
  TlsEngine client(client_ctx, to_host("localhost"));
  TlsEngine server(SslContext::server(test_pki().untrusted.cert, test_pki().untrusted.key), {});
  EXPECT_TRUE(handshake(client, server).client_error);
}

TEST(TlsEngine, CaAsPemTextIsTrusted) {
  auto client_ctx = SslContext::client();
  client_ctx.load_verify_pem(test_pki().ca_pem);
  TlsEngine client(client_ctx, to_host("localhost"));
  TlsEngine server(localhost_server(), {});
  EXPECT_TRUE(handshake(client, server).ok());
  EXPECT_THROW(client_ctx.load_verify_pem("not a certificate"), SslError);
}

TEST(TlsEngine, ClientCertificates) {
  auto server_ctx = localhost_server();
  server_ctx.require_client_certificate();
  server_ctx.load_verify_locations(test_pki().ca_cert);
  {
    auto client_ctx = trusting_client();
    client_ctx.load_cert_chain(test_pki().client.cert, test_pki().client.key);
    TlsEngine client(client_ctx, to_host("localhost"));
    TlsEngine server(server_ctx, {});
    ASSERT_TRUE(handshake(client, server).ok());
    // TLS 1.3 clients finish before the server has checked their certificate: one more flight settles it.
    write_all(client, "x");
    transfer(client, server);
    EXPECT_EQ(read_all(server), "x");
    EXPECT_NE(server.peer_certificate_subject().find("CN = tulipa test client"), std::string::npos);
  }
  {
    TlsEngine client(trusting_client(), to_host("localhost"));
    TlsEngine server(server_ctx, {});
    auto outcome = handshake(client, server);
    ASSERT_TRUE(outcome.server_error);
    EXPECT_EQ(outcome.server_error->reason(), "peer did not return a certificate");
  }
}

TEST(TlsEngine, ConfigurationErrorsAreClear) {
  try {
    SslContext::server("/nonexistent/cert.pem", "/nonexistent/key.pem");
    FAIL();
  } catch (const SslError& e) {
    EXPECT_EQ(e.kind(), SslError::Kind::configuration);
    EXPECT_NE(std::string(e.what()).find("cannot load the certificate chain '/nonexistent/cert.pem'"),
              std::string::npos)
        << e.what();
  }
  try {
    SslContext::server(test_pki().server.cert, test_pki().expired.key);
    FAIL();
  } catch (const SslError& e) {
    EXPECT_EQ(e.kind(), SslError::Kind::configuration);
    EXPECT_NE(std::string(e.what()).find("cannot load the private key"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("key values mismatch"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SslContext::client().load_verify_locations("/nonexistent/ca.pem"), SslError);
}

// ------------------------------------------------------------------------------------------------ garbage

TEST(TlsEngine, GarbageInsteadOfClientHelloIsAClearError) {
  TlsEngine server(localhost_server(), {});
  server.feed(bytes("this is not TLS at all, only some text\r\n"));
  try {
    server.do_handshake();
    FAIL() << "garbage accepted";
  } catch (const SslError& e) {
    EXPECT_EQ(e.kind(), SslError::Kind::protocol);
    EXPECT_EQ(e.reason(), "wrong version number");
  }
  EXPECT_THROW(server.read(std::span<std::byte>()), std::logic_error);  // the engine is dead, and says so
}

TEST(TlsEngine, PlainHttpRequestToATlsServerIsNamed) {
  TlsEngine server(localhost_server(), {});
  server.feed(bytes("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  try {
    server.do_handshake();
    FAIL() << "garbage accepted";
  } catch (const SslError& e) {
    EXPECT_EQ(e.reason(), "http request");
  }
}

TEST(TlsEngine, GarbageInsteadOfServerHelloIsAClearError) {
  TlsEngine client(trusting_client(), to_host("localhost"));
  EXPECT_EQ(client.do_handshake(), Status::want_read);
  EXPECT_GT(client.outgoing_size(), 0u);  // the ClientHello
  client.feed(bytes("HTTP/1.1 400 Bad Request\r\n\r\n"));
  try {
    client.do_handshake();
    FAIL() << "garbage accepted";
  } catch (const SslError& e) {
    EXPECT_EQ(e.kind(), SslError::Kind::protocol);
    EXPECT_EQ(e.reason(), "wrong version number");
  }
}

TEST(TlsEngine, RandomBytesNeverCrashTheServer) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    TlsEngine server(localhost_server(), {});
    std::vector<std::byte> junk(1 + rng() % 600);
    for (auto& b : junk) b = std::byte(rng());
    if (i % 2 == 0) junk[0] = std::byte{0x16};  // looks like a handshake record, to get past the first check
    server.feed(junk);
    server.feed_eof();
    EXPECT_THROW(server.do_handshake(), SslError);
  }
}

// ------------------------------------------------------------------------------------------------ closing

TEST(TlsEngine, CleanCloseIsDistinctFromTruncation) {
  TlsEngine client(trusting_client(), to_host("localhost"));
  TlsEngine server(localhost_server(), {});
  ASSERT_TRUE(handshake(client, server).ok());

  write_all(server, "last words");
  EXPECT_EQ(server.shutdown(), Status::want_read);  // close_notify sent, the client's not yet received
  EXPECT_TRUE(server.close_notify_sent());
  EXPECT_THROW(server.write(bytes("more")), std::logic_error);
  transfer(server, client);
  Status last = Status::ok;
  EXPECT_EQ(read_all(client, &last), "last words");
  EXPECT_EQ(last, Status::closed);
  EXPECT_TRUE(client.close_notify_received());
  EXPECT_EQ(client.shutdown(), Status::ok);  // answers with its own close_notify: both done
  transfer(client, server);
  read_all(server, &last);
  EXPECT_EQ(last, Status::closed);
  EXPECT_EQ(server.shutdown(), Status::ok);

  // Even with the stream ending after close_notify, the close is clean.
  client.feed_eof();
  std::byte buf[16];
  EXPECT_EQ(client.read(buf).status, Status::closed);
}

TEST(TlsEngine, EofWithoutCloseNotifyIsTruncation) {
  TlsEngine client(trusting_client(), to_host("localhost"));
  TlsEngine server(localhost_server(), {});
  ASSERT_TRUE(handshake(client, server).ok());
  write_all(server, "partial");
  transfer(server, client);
  client.feed_eof();  // the peer vanished without close_notify
  std::byte buf[64];
  auto r = client.read(buf);
  ASSERT_EQ(r.status, Status::ok);  // what arrived before the EOF is still delivered
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(buf), r.size), "partial");
  try {
    client.read(buf);
    FAIL() << "truncation not reported";
  } catch (const SslError& e) {
    EXPECT_EQ(e.kind(), SslError::Kind::truncated);
    EXPECT_EQ(e.reason(), "unexpected eof while reading");
  }
}

TEST(TlsEngine, EofDuringHandshakeIsTruncation) {
  TlsEngine client(trusting_client(), to_host("localhost"));
  client.do_handshake();
  client.feed_eof();
  try {
    client.do_handshake();
    FAIL();
  } catch (const SslError& e) {
    EXPECT_EQ(e.kind(), SslError::Kind::truncated);
  }
}

TEST(TlsEngine, ShutdownBeforeHandshakeHasNothingToSay) {
  TlsEngine client(trusting_client(), to_host("localhost"));
  EXPECT_EQ(client.shutdown(), Status::ok);
  EXPECT_EQ(client.outgoing_size(), 0u);
}

}  // namespace
}  // namespace tulipa
