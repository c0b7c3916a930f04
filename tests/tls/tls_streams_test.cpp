// Streams over TLS on loopback: open_connection / start_server with an SslContext.
#include "tulipa/tls_streams.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <span>
#include <string>

#include "support/stream_echo.hpp"
#include "support/test_certs.hpp"
#include "tulipa/bytes.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"
#include "tulipa/tls_net.hpp"

namespace tulipa {
namespace {

using test::echo_lines;
using test::localhost_server;
using test::test_pki;
using test::trusting_client;

std::uint16_t port_of(const Server& server) { return server.sockets().at(0).port(); }

TEST(TlsStreams, EchoLinesOverTls) {
  EventLoop loop;
  Server server = start_server(loop, echo_lines, "127.0.0.1", 0, localhost_server());
  auto got = run_until_complete(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<std::string> {
    SslOptions ssl_options;
    ssl_options.server_hostname = "localhost";
    auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port, trusting_client(), {}, ssl_options);
    writer.write("one\ntwo\n");
    std::string got = (co_await reader.readline()).str();
    got += (co_await reader.readline()).str();
    writer.close();
    co_await writer.wait_closed();
    co_return got;
  }(loop, port_of(server)));
  EXPECT_EQ(got, "one\ntwo\n");
  server.close();
}

TEST(TlsStreams, FourMebibytesWithDrainBothWays) {
  EventLoop loop;
  Server server = start_server(loop, echo_lines, "127.0.0.1", 0, localhost_server());
  std::string line(1023, 'q');
  line += '\n';
  auto total = run_until_complete(loop, [](EventLoop& loop, std::uint16_t port, std::string line) -> Coro<std::size_t> {
    // A temporary SslOptions in the co_await operand (see tls_net.hpp on why that is safe).
    auto [reader, writer] = co_await open_connection(loop, "localhost", port, trusting_client(), {},
                                                     SslOptions{.server_hostname = "localhost"});
    // A writer task and this reader at once: the echo comes back while we still write.
    auto sender = create_task(loop, [](StreamWriter w, std::string line) -> Coro<void> {
      for (int i = 0; i < 4096; ++i) {
        w.write(line);
        co_await w.drain();
      }
    }(writer, line));
    std::size_t received = 0;
    for (int i = 0; i < 4096; ++i) {
      Bytes echoed = co_await reader.readline();
      EXPECT_EQ(echoed.str(), line);
      received += echoed.size();
    }
    co_await Future<void>(sender);
    writer.close();
    co_await writer.wait_closed();
    co_return received;
  }(loop, port_of(server), line));
  EXPECT_EQ(total, std::size_t(4) << 20);
}

TEST(TlsStreams, HandshakeFailureIsThrownByOpenConnection) {
  EventLoop loop;
  Server server = start_server(loop, echo_lines, "127.0.0.1", 0,
                               SslContext::server(test_pki().expired.cert, test_pki().expired.key));
  auto what = run_until_complete(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<std::string> {
    try {
      (void)co_await open_connection(loop, "localhost", port, trusting_client());
    } catch (const SslError& e) {
      co_return e.what();
    }
    co_return "connected";
  }(loop, port_of(server)));
  EXPECT_EQ(what, "certificate verify failed: certificate has expired");
}

// The TLS overloads on the running loop: start_server, start_server_async, open_connection, create_server,
// create_server_async and create_connection, each used inside tulipa::run without passing a loop.
Coro<std::string> ask_tls(std::uint16_t port, std::string line) {
  auto [reader, writer] = co_await open_connection("localhost", port, trusting_client());
  writer.write(line + "\n");
  std::string got = (co_await reader.readline()).str();
  writer.close();
  co_await writer.wait_closed();
  co_return got;
}

struct EchoProtocol final : Protocol {
  Transport* t = nullptr;
  void connection_made(Transport& transport) override { t = &transport; }
  void data_received(std::span<const std::byte> data) override { t->write(data); }
};

TEST(TlsStreams, TheRunningLoopOverloads) {
  auto main = []() -> Coro<std::string> {
    const ProtocolFactory echo = [] { return std::unique_ptr<StreamProtocol>(new EchoProtocol); };
    std::string got;
    Server streams = start_server(echo_lines, "127.0.0.1", 0, localhost_server());
    got += co_await ask_tls(port_of(streams), "streams");
    Server streams_async = co_await start_server_async(echo_lines, "localhost", 0, localhost_server());
    got += co_await ask_tls(port_of(streams_async), "streams-async");
    Server protocols = create_server(echo, "127.0.0.1", 0, localhost_server());
    got += co_await ask_tls(port_of(protocols), "protocols");
    Server protocols_async = co_await create_server_async(echo, "localhost", 0, localhost_server());
    got += co_await ask_tls(port_of(protocols_async), "protocols-async");
    // create_connection: the handshake completes and the transport is the TLS one.
    Transport* t = co_await create_connection([] { return std::unique_ptr<StreamProtocol>(new Protocol); }, "localhost",
                                              port_of(protocols), trusting_client());
    got += dynamic_cast<SslTransport*>(t) != nullptr ? "tls\n" : "plain\n";
    t->close();
    for (Server* s : {&streams, &streams_async, &protocols, &protocols_async}) {
      s->close();
      co_await s->wait_closed();
    }
    co_return got;
  };
  EXPECT_EQ(run(main()), "streams\nstreams-async\nprotocols\nprotocols-async\ntls\n");
}

}  // namespace
}  // namespace tulipa
