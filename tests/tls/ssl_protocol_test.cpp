// The TLS layer over real sockets on 127.0.0.1 (port 0): create_server / create_connection with an SslContext,
// start_tls, flow control through TLS, timeouts (on a virtual clock), and interoperation both ways with the
// `openssl s_server` and `openssl s_client` programs.
#include "tulipa/tls_net.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "support/test_certs.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

extern char** environ;

namespace tulipa {
namespace {

using namespace std::chrono_literals;
using test::localhost_server;
using test::test_pki;
using test::trusting_client;

// Runs the loop until `done()` holds. The guard only turns a hang into a failure; no test depends on timing.
bool run_until(EventLoop& loop, const std::function<bool()>& done) {
  bool expired = false;
  TimerHandle guard;
  if (!loop.clock().is_virtual()) guard = loop.call_later(30s, [&] { expired = true; });
  int passes = 0;
  while (!done() && !expired && ++passes < 5'000'000) loop.run_once();
  guard.cancel();
  return done();
}

// What a protocol saw, shared with the test (the transport owns the protocol).
struct Seen {
  bool made = false;
  std::string data;
  int eofs = 0;
  bool lost = false;
  std::exception_ptr lost_exc;
  int pauses = 0;
  int resumes = 0;
  Transport* transport = nullptr;
};

class Recorder : public Protocol {
 public:
  explicit Recorder(std::shared_ptr<Seen> seen) : seen_(std::move(seen)) {}
  std::function<void(Transport&)> on_made;
  std::function<void(Transport&, std::string_view)> on_data;
  bool keep_open_on_eof = false;

  void connection_made(Transport& t) override {
    seen_->made = true;
    seen_->transport = &t;
    if (on_made) on_made(t);
  }
  void data_received(std::span<const std::byte> data) override {
    std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    seen_->data.append(text);
    if (on_data) on_data(*seen_->transport, text);
  }
  bool eof_received() override {
    ++seen_->eofs;
    return keep_open_on_eof;
  }
  void connection_lost(std::exception_ptr exc) override {
    seen_->lost = true;
    seen_->lost_exc = exc;
    seen_->transport = nullptr;
  }
  void pause_writing() override { ++seen_->pauses; }
  void resume_writing() override { ++seen_->resumes; }

 private:
  std::shared_ptr<Seen> seen_;
};

// Counts and checksums what arrives, in its own buffer (no copy through a shared one).
class BufferedSink : public BufferedProtocol {
 public:
  explicit BufferedSink(std::shared_ptr<Seen> seen, std::shared_ptr<std::vector<std::byte>> into)
      : seen_(std::move(seen)), into_(std::move(into)) {}
  void connection_made(Transport& t) override {
    seen_->made = true;
    seen_->transport = &t;
  }
  std::span<std::byte> get_buffer(std::size_t) override { return buf_; }
  void buffer_updated(std::size_t n) override { into_->insert(into_->end(), buf_, buf_ + n); }
  bool eof_received() override {
    ++seen_->eofs;
    return false;
  }
  void connection_lost(std::exception_ptr exc) override {
    seen_->lost = true;
    seen_->lost_exc = exc;
  }

 private:
  std::shared_ptr<Seen> seen_;
  std::shared_ptr<std::vector<std::byte>> into_;
  std::byte buf_[8192];
};

// `name` must outlive the call the options go to (literals here).
SslOptions for_host(std::string_view name) {
  SslOptions o;
  o.server_hostname = name;
  return o;
}

// The exception in `p` as an E (null if it is something else); `what` gets its message either way.
template <class E>
const E* exception_as(const std::exception_ptr& p, std::string* what = nullptr) {
  static thread_local std::optional<E> holder;
  if (!p) return nullptr;
  try {
    std::rethrow_exception(p);
  } catch (const std::exception& e) {
    if (what) *what = e.what();
    if (const E* typed = dynamic_cast<const E*>(&e)) {
      holder.emplace(*typed);
      return &*holder;
    }
  } catch (...) {
  }
  return nullptr;
}

struct ConnectResult {
  bool called = false;
  Transport* transport = nullptr;
  std::exception_ptr error;
  ConnectCallback callback() {
    return [this](Transport* t, std::exception_ptr e) {
      called = true;
      transport = t;
      error = e;
    };
  }
};

std::uint16_t port_of(const Server& server) { return server.sockets().at(0).port(); }

class SslProtocolTest : public ::testing::Test {
 protected:
  EventLoop loop;
  void TearDown() override {
    // Let transports finish closing (connection_lost runs as a loop callback).
    // (A ready callback each pass keeps run_once from waiting in the selector.)
    for (int i = 0; i < 20; ++i) {
      loop.call_soon([] {});
      loop.run_once();
    }
  }
};

// ------------------------------------------------------------------------------------------------ basics

TEST_F(SslProtocolTest, EchoRoundTripAndCleanClose) {
  auto server_seen = std::make_shared<Seen>();
  Server server = create_server(
      loop,
      [&] {
        auto p = std::make_unique<Recorder>(server_seen);
        p->on_data = [](Transport& t, std::string_view d) { t.write(d); };
        return p;
      },
      "127.0.0.1", 0, localhost_server());
  auto client_seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(client_seen); }, "127.0.0.1", port_of(server), trusting_client(),
      result.callback(), {}, for_host("localhost"));
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  ASSERT_FALSE(result.error);
  ASSERT_NE(result.transport, nullptr);
  EXPECT_TRUE(client_seen->made);  // connection_made ran before the callback
  EXPECT_EQ(client_seen->transport, result.transport);
  SslTransport* tls = as_ssl_transport(*result.transport);
  ASSERT_NE(tls, nullptr);
  EXPECT_EQ(tls->tls_version(), "TLSv1.3");
  EXPECT_NE(tls->peer_certificate_subject().find("CN = localhost"), std::string::npos);
  EXPECT_FALSE(tls->session_reused());
  EXPECT_EQ(tls->peername().port(), port_of(server));
  EXPECT_GE(tls->fd(), 0);
  EXPECT_FALSE(tls->can_write_eof());
  EXPECT_THROW(tls->write_eof(), std::logic_error);

  result.transport->write(std::string_view("hello over TLS"));
  ASSERT_TRUE(run_until(loop, [&] { return client_seen->data.size() >= 14; }));
  EXPECT_EQ(client_seen->data, "hello over TLS");
  ASSERT_TRUE(server_seen->made);
  SslTransport* server_tls = as_ssl_transport(*server_seen->transport);
  ASSERT_NE(server_tls, nullptr);
  EXPECT_EQ(server_tls->server_name(), "localhost");

  // close(): close_notify goes out; the server's protocol sees eof_received (a clean end) and closes in turn.
  result.transport->close();
  EXPECT_TRUE(result.transport->is_closing());
  ASSERT_TRUE(run_until(loop, [&] { return client_seen->lost && server_seen->lost; }));
  EXPECT_EQ(server_seen->eofs, 1);
  EXPECT_FALSE(client_seen->lost_exc);
  EXPECT_FALSE(server_seen->lost_exc);
  server.close();
}

TEST_F(SslProtocolTest, AlpnAndSessionResumptionOverSockets) {
  auto server_ctx = localhost_server();
  server_ctx.set_alpn_protocols({"h2", "http/1.1"});
  Server server = create_server(
      loop,
      [&] {
        auto p = std::make_unique<Recorder>(std::make_shared<Seen>());
        p->on_data = [](Transport& t, std::string_view d) { t.write(d); };
        return p;
      },
      "127.0.0.1", 0, server_ctx);
  auto client_ctx = trusting_client();
  client_ctx.set_alpn_protocols({"http/1.1"});
  client_ctx.enable_session_cache();
  for (int round = 0; round < 2; ++round) {
    auto seen = std::make_shared<Seen>();
    ConnectResult result;
    create_connection(
        loop, [&] { return std::make_unique<Recorder>(seen); }, "localhost", port_of(server), client_ctx,
        result.callback());  // server_hostname defaults to the host connected to
    ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
    ASSERT_FALSE(result.error);
    SslTransport* tls = as_ssl_transport(*result.transport);
    EXPECT_EQ(tls->alpn_protocol(), "http/1.1");
    EXPECT_EQ(tls->session_reused(), round == 1) << "round " << round;
    // A round trip, so that the TLS 1.3 session tickets (sent after the handshake) are read.
    result.transport->write(std::string_view("x"));
    ASSERT_TRUE(run_until(loop, [&] { return seen->data == "x"; }));
    result.transport->close();
    ASSERT_TRUE(run_until(loop, [&] { return seen->lost; }));
  }
  EXPECT_EQ(client_ctx.session_cache_size(), 1u);
}

TEST_F(SslProtocolTest, EightMebibytesIntoABufferedProtocolWithFlowControl) {
  auto received = std::make_shared<std::vector<std::byte>>();
  auto server_seen = std::make_shared<Seen>();
  Server server = create_server(
      loop, [&] { return std::make_unique<BufferedSink>(server_seen, received); }, "127.0.0.1", 0, localhost_server());
  auto client_seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(client_seen); }, "127.0.0.1", port_of(server), trusting_client(),
      result.callback(), {}, for_host("localhost"));
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  ASSERT_FALSE(result.error);

  std::vector<std::byte> data(8 << 20);
  std::mt19937_64 rng(1);
  for (auto& b : data) b = std::byte(rng());
  result.transport->write(data);
  // Far more than the kernel takes at once: the socket transport buffers it, and the app is told to pause.
  EXPECT_EQ(client_seen->pauses, 1);
  EXPECT_GT(result.transport->get_write_buffer_size(), result.transport->get_write_buffer_limits().high);
  ASSERT_TRUE(run_until(loop, [&] { return received->size() >= data.size(); }));
  EXPECT_TRUE(*received == data);
  EXPECT_EQ(client_seen->resumes, 1);
  EXPECT_EQ(result.transport->get_write_buffer_size(), 0u);
  result.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client_seen->lost && server_seen->lost; }));
  EXPECT_FALSE(client_seen->lost_exc);
}

TEST_F(SslProtocolTest, ASlowTlsReaderPausesTheWriter) {
  auto server_seen = std::make_shared<Seen>();
  Transport* server_transport = nullptr;
  Server server = create_server(
      loop,
      [&] {
        auto p = std::make_unique<Recorder>(server_seen);
        p->on_made = [&](Transport& t) {
          server_transport = &t;
          t.pause_reading();  // a reader that does not read yet
        };
        return p;
      },
      "127.0.0.1", 0, localhost_server());
  auto client_seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(client_seen); }, "127.0.0.1", port_of(server), trusting_client(),
      result.callback(), {}, for_host("localhost"));
  ASSERT_TRUE(run_until(loop, [&] { return result.called && server_transport != nullptr; }));
  ASSERT_FALSE(result.error);
  EXPECT_FALSE(server_transport->is_reading());

  // Write in 64 KiB pieces until the client is told to pause: the server's TLS buffer fills, its socket stops
  // being read, the kernel buffers fill, and the client's transport buffer grows past its high-water mark.
  std::string chunk(64 * 1024, 'z');
  std::size_t written = 0;
  while (client_seen->pauses == 0) {
    ASSERT_LT(written, std::size_t(512) << 20) << "the writer was never paused";
    result.transport->write(std::string_view(chunk));
    written += chunk.size();
    for (int i = 0; i < 10; ++i) {
      loop.call_soon([] {});  // keeps run_once from waiting in the selector
      loop.run_once();
    }
  }
  EXPECT_TRUE(server_seen->data.empty());  // nothing was delivered to the paused reader

  server_transport->resume_reading();
  ASSERT_TRUE(run_until(loop, [&] { return server_seen->data.size() >= written; }));
  EXPECT_EQ(server_seen->data.size(), written);
  EXPECT_EQ(std::count(server_seen->data.begin(), server_seen->data.end(), 'z'), static_cast<long>(written));
  ASSERT_TRUE(run_until(loop, [&] { return client_seen->resumes == 1; }));
  result.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client_seen->lost && server_seen->lost; }));
}

TEST_F(SslProtocolTest, MutualTlsShowsTheClientCertificateToTheServer) {
  auto server_ctx = localhost_server();
  server_ctx.require_client_certificate();
  server_ctx.load_verify_locations(test_pki().ca_cert);
  std::string subject;
  Server server = create_server(
      loop,
      [&] {
        auto p = std::make_unique<Recorder>(std::make_shared<Seen>());
        p->on_made = [&](Transport& t) { subject = as_ssl_transport(t)->peer_certificate_subject(); };
        p->on_data = [](Transport& t, std::string_view d) { t.write(d); };
        return p;
      },
      "127.0.0.1", 0, server_ctx);
  auto client_ctx = trusting_client();
  client_ctx.load_cert_chain(test_pki().client.cert, test_pki().client.key);
  auto seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(seen); }, "127.0.0.1", port_of(server), client_ctx,
      result.callback(), {}, for_host("localhost"));
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  ASSERT_FALSE(result.error);
  result.transport->write(std::string_view("mtls"));
  ASSERT_TRUE(run_until(loop, [&] { return seen->data == "mtls"; }));
  EXPECT_NE(subject.find("CN = tulipa test client"), std::string::npos) << subject;
  result.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return seen->lost; }));
}

TEST_F(SslProtocolTest, ServerRequiringAClientCertificateRefusesAClientWithout) {
  auto server_ctx = localhost_server();
  server_ctx.require_client_certificate();
  server_ctx.load_verify_locations(test_pki().ca_cert);
  auto server_seen = std::make_shared<Seen>();
  Server server =
      create_server(loop, [&] { return std::make_unique<Recorder>(server_seen); }, "127.0.0.1", 0, server_ctx);
  auto seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(seen); }, "127.0.0.1", port_of(server), trusting_client(),
      result.callback(), {}, for_host("localhost"));
  // With TLS 1.3 the client's handshake ends before the server has looked at its (missing) certificate: the
  // refusal then arrives as an alert on the established connection.
  ASSERT_TRUE(run_until(loop, [&] { return (result.called && result.error) || seen->lost; }));
  const std::exception_ptr error = result.error ? result.error : seen->lost_exc;
  const SslError* e = exception_as<SslError>(error);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->reason(), "tlsv13 alert certificate required");
  EXPECT_FALSE(server_seen->made);
}

TEST_F(SslProtocolTest, WritesAfterCloseAreDropped) {
  auto server_seen = std::make_shared<Seen>();
  Server server =
      create_server(loop, [&] { return std::make_unique<Recorder>(server_seen); }, "127.0.0.1", 0, localhost_server());
  auto seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(seen); }, "127.0.0.1", port_of(server), trusting_client(),
      result.callback(), {}, for_host("localhost"));
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  ASSERT_FALSE(result.error);
  result.transport->write(std::string_view("before"));
  result.transport->close();
  result.transport->write(std::string_view("after"));  // dropped, as the socket transport drops them
  ASSERT_TRUE(run_until(loop, [&] { return seen->lost && server_seen->lost; }));
  EXPECT_EQ(server_seen->data, "before");
  EXPECT_EQ(server_seen->eofs, 1);
}

// ------------------------------------------------------------------------------------------------ failures

TEST_F(SslProtocolTest, UntrustedServerCertificateFailsTheConnection) {
  auto server_seen = std::make_shared<Seen>();
  Server server = create_server(
      loop, [&] { return std::make_unique<Recorder>(server_seen); }, "127.0.0.1", 0,
      SslContext::server(test_pki().untrusted.cert, test_pki().untrusted.key));
  auto client_seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(client_seen); }, "127.0.0.1", port_of(server), trusting_client(),
      result.callback(), {}, for_host("localhost"));
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  EXPECT_EQ(result.transport, nullptr);
  const SslError* e = exception_as<SslError>(result.error);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind(), SslError::Kind::certificate);
  EXPECT_STREQ(e->what(), "certificate verify failed: unable to get local issuer certificate");
  EXPECT_FALSE(client_seen->made);  // the protocol never heard of the connection
  ASSERT_TRUE(run_until(loop, [&] { return server.active_connections() == 0; }));
  EXPECT_FALSE(server_seen->made);
}

TEST_F(SslProtocolTest, WrongHostNameFailsTheConnection) {
  Server server = create_server(
      loop, [&] { return std::make_unique<Recorder>(std::make_shared<Seen>()); }, "127.0.0.1", 0, localhost_server());
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(std::make_shared<Seen>()); }, "127.0.0.1", port_of(server),
      trusting_client(), result.callback(), {}, for_host("tulipa.example"));
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  const SslError* e = exception_as<SslError>(result.error);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->verify_message(), "hostname mismatch");
}

TEST_F(SslProtocolTest, ConnectionRefusedIsReportedAsSuch) {
  // A port nobody listens on: bind one, note it, close it.
  Server probe =
      create_server(loop, [&] { return std::make_unique<Recorder>(std::make_shared<Seen>()); }, "127.0.0.1", 0);
  const std::uint16_t port = port_of(probe);
  probe.close();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(std::make_shared<Seen>()); }, "127.0.0.1", port, trusting_client(),
      result.callback(), {}, for_host("localhost"));
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  EXPECT_NE(exception_as<std::system_error>(result.error), nullptr);
}

TEST_F(SslProtocolTest, PlainTextClientGetsClosedAndTheServerLogsWhyInDebugMode) {
  std::vector<std::string> log;
  loop.set_log_handler([&](std::string_view line) { log.emplace_back(line); });
  loop.set_debug(true);
  auto server_seen = std::make_shared<Seen>();
  Server server =
      create_server(loop, [&] { return std::make_unique<Recorder>(server_seen); }, "127.0.0.1", 0, localhost_server());
  auto plain_seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(plain_seen); }, "127.0.0.1", port_of(server), result.callback());
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  ASSERT_FALSE(result.error);
  result.transport->write(std::string_view("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  ASSERT_TRUE(run_until(loop, [&] { return plain_seen->lost; }));
  EXPECT_FALSE(server_seen->made);
  ASSERT_TRUE(run_until(loop, [&] { return server.active_connections() == 0; }));
  EXPECT_NE(std::find(log.begin(), log.end(), "TLS handshake failed: http request"), log.end());
}

TEST_F(SslProtocolTest, EofWithoutCloseNotifyIsReportedAsTruncation) {
  Server server = create_server(
      loop,
      [&] {
        auto p = std::make_unique<Recorder>(std::make_shared<Seen>());
        // Answers, then drops the TCP connection without TLS's close_notify.
        p->on_data = [](Transport& t, std::string_view) {
          t.write(std::string_view("bye"));
          t.abort();
        };
        return p;
      },
      "127.0.0.1", 0, localhost_server());
  auto seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(seen); }, "127.0.0.1", port_of(server), trusting_client(),
      result.callback(), {}, for_host("localhost"));
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  ASSERT_FALSE(result.error);
  result.transport->write(std::string_view("hi"));
  ASSERT_TRUE(run_until(loop, [&] { return seen->lost; }));
  EXPECT_EQ(seen->eofs, 0);  // not a clean end
  const SslError* e = exception_as<SslError>(seen->lost_exc);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind(), SslError::Kind::truncated);
}

// ------------------------------------------------------------------------------------------------ timeouts

class SslTimeoutTest : public ::testing::Test {
 protected:
  // Auto-advancing virtual time: when nothing but a timer is left to wait for, the loop jumps to it.
  VirtualClock clock{TimePoint{} + std::chrono::hours(1), /*auto_advance=*/true};
  EventLoop loop{LoopOptions{.clock = &clock}};
  void TearDown() override {
    // (A ready callback each pass keeps run_once from waiting in the selector.)
    for (int i = 0; i < 20; ++i) {
      loop.call_soon([] {});
      loop.run_once();
    }
  }
};

TEST_F(SslTimeoutTest, ClientHandshakeTimesOutAgainstASilentServer) {
  auto plain_seen = std::make_shared<Seen>();
  Server server = create_server(
      loop, [&] { return std::make_unique<Recorder>(plain_seen); }, "127.0.0.1", 0);  // no TLS: never answers
  ConnectResult result;
  SslOptions options = for_host("localhost");
  options.handshake_timeout = 5s;
  const TimePoint start = loop.time();
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(std::make_shared<Seen>()); }, "127.0.0.1", port_of(server),
      trusting_client(), result.callback(), {}, options);
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  const SslError* e = exception_as<SslError>(result.error);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind(), SslError::Kind::timeout);
  EXPECT_STREQ(e->what(), "TLS handshake timed out");
  EXPECT_GE(loop.time() - start, 5s);
  ASSERT_TRUE(run_until(loop, [&] { return plain_seen->lost; }));  // the server saw the connection go
}

TEST_F(SslTimeoutTest, ServerHandshakeTimesOutAgainstASilentClient) {
  auto server_seen = std::make_shared<Seen>();
  SslOptions options;
  options.handshake_timeout = 7s;
  Server server = create_server(
      loop, [&] { return std::make_unique<Recorder>(server_seen); }, "127.0.0.1", 0, localhost_server(), {}, options);
  auto plain_seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(plain_seen); }, "127.0.0.1", port_of(server), result.callback());
  ASSERT_TRUE(run_until(loop, [&] { return plain_seen->lost; }));  // the server gave up and closed
  EXPECT_FALSE(server_seen->made);
  ASSERT_TRUE(run_until(loop, [&] { return server.active_connections() == 0; }));
}

TEST_F(SslTimeoutTest, ShutdownTimesOutWhenThePeerNeverAnswersCloseNotify) {
  auto server_seen = std::make_shared<Seen>();
  Server server = create_server(
      loop,
      [&] {
        auto p = std::make_unique<Recorder>(server_seen);
        p->keep_open_on_eof = true;  // keeps the connection after the client's close_notify, and never closes
        return p;
      },
      "127.0.0.1", 0, localhost_server());
  auto seen = std::make_shared<Seen>();
  ConnectResult result;
  SslOptions options = for_host("localhost");
  options.shutdown_timeout = 3s;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(seen); }, "127.0.0.1", port_of(server), trusting_client(),
      result.callback(), {}, options);
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  ASSERT_FALSE(result.error);
  result.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return seen->lost; }));
  const SslError* e = exception_as<SslError>(seen->lost_exc);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind(), SslError::Kind::timeout);
  EXPECT_STREQ(e->what(), "TLS shutdown timed out");
  EXPECT_EQ(server_seen->eofs, 1);
  server.close_clients();
}

// ------------------------------------------------------------------------------------------------ start_tls

TEST_F(SslProtocolTest, StartTlsUpgradesAPlainConnection) {
  // A STARTTLS exchange: plain "STARTTLS\n", plain "OK\n", then both sides upgrade; the same protocol objects go
  // on receiving, now decrypted.
  auto server_seen = std::make_shared<Seen>();
  ConnectResult server_upgrade;
  auto server_ctx = localhost_server();
  Server server = create_server(
      loop,
      [&] {
        auto p = std::make_unique<Recorder>(server_seen);
        p->on_data = [&](Transport& t, std::string_view d) {
          if (d == "STARTTLS\n") {
            t.write(std::string_view("OK\n"));
            start_tls(t, server_ctx, [&, seen = server_seen](Transport* tls, std::exception_ptr e) {
              server_upgrade.callback()(tls, e);
              if (tls) seen->transport = tls;  // the protocol talks to the TLS transport from now on
            });
          } else if (server_upgrade.transport) {
            server_upgrade.transport->write(d);  // echo over TLS
          }
        };
        return p;
      },
      "127.0.0.1", 0);
  auto client_seen = std::make_shared<Seen>();
  ConnectResult plain, client_upgrade;
  create_connection(
      loop,
      [&] {
        auto p = std::make_unique<Recorder>(client_seen);
        p->on_data = [&](Transport& t, std::string_view d) {
          if (d == "OK\n") {
            start_tls(t, trusting_client(), client_upgrade.callback(), for_host("localhost"));
          }
        };
        return p;
      },
      "127.0.0.1", port_of(server), plain.callback());
  ASSERT_TRUE(run_until(loop, [&] { return plain.called; }));
  ASSERT_FALSE(plain.error);
  plain.transport->write(std::string_view("STARTTLS\n"));
  ASSERT_TRUE(run_until(loop, [&] { return client_upgrade.called && server_upgrade.called; }));
  ASSERT_FALSE(client_upgrade.error);
  ASSERT_FALSE(server_upgrade.error);
  SslTransport* tls = as_ssl_transport(*client_upgrade.transport);
  ASSERT_NE(tls, nullptr);
  EXPECT_EQ(tls->tls_version(), "TLSv1.3");
  // The plain transport's protocol is now the TLS layer; the application's protocol moved behind the TLS transport.
  EXPECT_NE(dynamic_cast<Recorder*>(&tls->get_protocol()), nullptr);
  EXPECT_EQ(dynamic_cast<Recorder*>(&plain.transport->get_protocol()), nullptr);
  client_seen->data.clear();
  client_upgrade.transport->write(std::string_view("secret"));
  ASSERT_TRUE(run_until(loop, [&] { return client_seen->data == "secret"; }));
  EXPECT_EQ(server_seen->data, "STARTTLS\nsecret");
  client_upgrade.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client_seen->lost && server_seen->lost; }));
  EXPECT_FALSE(client_seen->lost_exc);
  EXPECT_EQ(server_seen->eofs, 1);  // the close_notify reached the upgraded protocol as eof_received
}

TEST_F(SslProtocolTest, StartTlsWithoutAHostNameIsRefused) {
  Server server =
      create_server(loop, [&] { return std::make_unique<Recorder>(std::make_shared<Seen>()); }, "127.0.0.1", 0);
  ConnectResult plain;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(std::make_shared<Seen>()); }, "127.0.0.1", port_of(server),
      plain.callback());
  ASSERT_TRUE(run_until(loop, [&] { return plain.called; }));
  ASSERT_FALSE(plain.error);
  EXPECT_THROW(start_tls(*plain.transport, trusting_client(), [](Transport*, std::exception_ptr) {}),
               std::invalid_argument);
  plain.transport->close();
}

TEST_F(SslProtocolTest, ContextRolesAreChecked) {
  EXPECT_THROW(create_server(
                   loop, [&] { return std::make_unique<Recorder>(std::make_shared<Seen>()); }, "127.0.0.1", 0,
                   trusting_client()),
               std::invalid_argument);
  EXPECT_THROW(create_connection(
                   loop, [&] { return std::make_unique<Recorder>(std::make_shared<Seen>()); }, "127.0.0.1", 1,
                   localhost_server(), [](Transport*, std::exception_ptr) {}),
               std::invalid_argument);
}

// ------------------------------------------------------------------------------------------------ interop

// A child process (the openssl program) with its stdin and stdout on pipes; killed and reaped on destruction.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    if (rc != 0) throw std::runtime_error("cannot spawn " + argv[0]);
    ::fcntl(stdout_, F_SETFL, ::fcntl(stdout_, F_GETFL) | O_NONBLOCK);
  }
  ~Child() {
    if (stdin_ >= 0) ::close(stdin_);
    if (stdout_ >= 0) ::close(stdout_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int stdout_fd() const { return stdout_; }
  void write_stdin(std::string_view s) { (void)!::write(stdin_, s.data(), s.size()); }
  // Reads what is there; false at EOF.
  bool read_some(std::string& into) {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(stdout_, buf, sizeof buf);
      if (n > 0) {
        into.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      return n < 0;  // EAGAIN: more later; 0: EOF
    }
  }
  // Waits for the exit status (call once the child is known to be done: its stdout reached EOF).
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  bool reaped_ = false;
};

TEST_F(SslProtocolTest, InteropClientAgainstOpensslSServer) {
  // s_server -rev answers each line reversed; port 0, it prints "ACCEPT 127.0.0.1:<port>".
  Child server({"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", test_pki().server.cert, "-key",
                test_pki().server.key, "-naccept", "1", "-rev", "-alpn", "x-tulipa"});
  std::string out;
  bool server_eof = false;
  loop.add_reader(server.stdout_fd(), [&] { server_eof = !server.read_some(out); });
  ASSERT_TRUE(run_until(loop, [&] { return out.find('\n', out.find("ACCEPT")) != std::string::npos || server_eof; }))
      << out;
  const auto at = out.find("ACCEPT 127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << out;
  const auto port = static_cast<std::uint16_t>(std::stoi(out.substr(at + 17)));

  auto client_ctx = trusting_client();
  client_ctx.set_alpn_protocols({"x-tulipa"});
  auto seen = std::make_shared<Seen>();
  ConnectResult result;
  create_connection(
      loop, [&] { return std::make_unique<Recorder>(seen); }, "127.0.0.1", port, client_ctx, result.callback(), {},
      for_host("localhost"));
  ASSERT_TRUE(run_until(loop, [&] { return result.called; }));
  ASSERT_FALSE(result.error) << [&] {
    std::string what;
    exception_as<std::exception>(result.error, &what);
    return what;
  }();
  EXPECT_EQ(as_ssl_transport(*result.transport)->alpn_protocol(), "x-tulipa");
  result.transport->write(std::string_view("hello tulipa\n"));
  ASSERT_TRUE(run_until(loop, [&] { return seen->data.find('\n') != std::string::npos || seen->lost; }));
  EXPECT_EQ(seen->data, "apilut olleh\n");
  result.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return seen->lost && server_eof; }));
  EXPECT_FALSE(seen->lost_exc);
  loop.remove_reader(server.stdout_fd());
  EXPECT_EQ(server.wait(), 0);
}

TEST_F(SslProtocolTest, InteropOpensslSClientAgainstOurServer) {
  auto server_ctx = localhost_server();
  server_ctx.set_alpn_protocols({"x-tulipa"});
  auto server_seen = std::make_shared<Seen>();
  std::string alpn_seen;
  Server server = create_server(
      loop,
      [&] {
        auto p = std::make_unique<Recorder>(server_seen);
        // Upper-cases one line, then closes (close_notify), which ends s_client.
        p->on_data = [&](Transport& t, std::string_view) {
          if (server_seen->data.find('\n') == std::string::npos) return;
          alpn_seen = std::string(as_ssl_transport(t)->alpn_protocol());
          std::string up = server_seen->data;
          std::transform(up.begin(), up.end(), up.begin(), [](char c) { return std::toupper(c); });
          t.write(std::string_view("got: " + up));
          t.close();
        };
        return p;
      },
      "127.0.0.1", 0, server_ctx);
  Child client({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_of(server)), "-servername",
                "localhost", "-verify_hostname", "localhost", "-CAfile", test_pki().ca_cert, "-verify_return_error",
                "-alpn", "x-tulipa", "-quiet"});
  client.write_stdin("ping from s_client\n");
  std::string out;
  bool client_eof = false;
  loop.add_reader(client.stdout_fd(), [&] { client_eof = !client.read_some(out); });
  ASSERT_TRUE(run_until(loop, [&] { return client_eof && server_seen->lost; })) << out;
  loop.remove_reader(client.stdout_fd());
  EXPECT_EQ(out, "got: PING FROM S_CLIENT\n");
  EXPECT_EQ(alpn_seen, "x-tulipa");
  EXPECT_FALSE(server_seen->lost_exc);
  EXPECT_EQ(client.wait(), 0);
}

}  // namespace
}  // namespace tulipa
