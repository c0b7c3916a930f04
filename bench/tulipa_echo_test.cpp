// tulipa_echo --tls CERT KEY, run as the benchmark runs it: a child process that prints "ready", echoes over TLS
// on 127.0.0.1:PORT for each STYLE, and exits with status 0 on SIGTERM; bad --tls arguments exit with status 2
// and say why on stderr; a port already in use exits with status 1 and says so.
//
// The port: tulipa_echo takes a fixed PORT (run.sh's contract), so the test asks the kernel for a free one (bind
// to port 0, read it, close) and hands it over; another process could take it in between, which would show up as
// tulipa_echo failing to start, not as a wrong result.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "support/test_certs.hpp"
#include "tulipa/bytes.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/process.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/timeout.hpp"
#include "tulipa/tls.hpp"
#include "tulipa/tls_streams.hpp"

namespace {

using tulipa::test::test_pki;

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ADD_FAILURE() << "no free port on 127.0.0.1";
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// Starts tulipa_echo PORT STYLE --tls with the test PKI's "localhost" certificate, waits for "ready", echoes one
// message over a verified TLS connection, then stops the server with SIGTERM. Returns the echo; `status` gets the
// exit status.
tulipa::Coro<std::string> echo_once(std::string style, std::string message, int* status) {
  const std::uint16_t port = free_port();
  std::vector<std::string> argv{TULIPA_ECHO_PATH, std::to_string(port),   style,
                                "--tls",          test_pki().server.cert, test_pki().server.key};
  tulipa::SubprocessOptions options;
  options.std_out = tulipa::Stdio::pipe();
  // Made before the co_await, as everything the operand would otherwise hold as a temporary (see process.hpp).
  tulipa::Coro<tulipa::Process> spawn = tulipa::create_subprocess_exec(argv, options);
  tulipa::Process server = co_await std::move(spawn);
  tulipa::Bytes first_line = co_await server.std_out()->readline();
  EXPECT_EQ(first_line.str(), "ready\n");

  tulipa::SslContext client = tulipa::SslContext::client();
  client.load_verify_locations(test_pki().ca_cert);
  tulipa::SslOptions ssl_options;
  ssl_options.server_hostname = "localhost";
  tulipa::StreamOptions stream_options;
  auto [reader, writer] = co_await tulipa::open_connection(tulipa::get_running_loop(), "127.0.0.1", port, client,
                                                           stream_options, ssl_options);
  writer.write(message);
  co_await writer.drain();
  tulipa::Bytes echoed = co_await reader.readexactly(message.size());
  writer.close();
  co_await writer.wait_closed();

  server.terminate();
  *status = co_await server.wait();
  co_return echoed.str();
}

// Runs tulipa_echo with `args` after the program name and PORT (a free one unless given); returns its stderr,
// `status` its exit status.
tulipa::Coro<std::string> refused(std::vector<std::string> args, int* status, std::uint16_t port = 0) {
  std::vector<std::string> argv{TULIPA_ECHO_PATH, std::to_string(port != 0 ? port : free_port())};
  argv.insert(argv.end(), args.begin(), args.end());
  tulipa::SubprocessOptions options;
  options.std_out = tulipa::Stdio::devnull();
  options.std_err = tulipa::Stdio::pipe();
  tulipa::Coro<tulipa::Process> spawn = tulipa::create_subprocess_exec(argv, options);
  tulipa::Process p = co_await std::move(spawn);
  tulipa::CommunicateResult out = co_await p.communicate();
  *status = co_await p.wait();
  co_return out.std_err.str();
}

class TulipaEchoTls : public testing::TestWithParam<const char*> {};

TEST_P(TulipaEchoTls, EchoesOverTlsAndExitsCleanlyOnSigterm) {
  tulipa::EventLoop loop;
  std::string message(3000, 'e');  // more than one read of the load generator's 1 KiB, less than a TLS record
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>('a' + i % 26);
  int status = -1;
  std::string echoed = tulipa::run_until_complete(loop, echo_once(GetParam(), message, &status));
  EXPECT_EQ(echoed, message);
  EXPECT_EQ(status, 0);
}

INSTANTIATE_TEST_SUITE_P(Styles, TulipaEchoTls, testing::Values("protocol", "streams"));

TEST(TulipaEchoTlsArguments, UnreadableKeyExitsWithStatus2AndTheReason) {
  tulipa::EventLoop loop;
  int status = -1;
  std::string missing = test_pki().dir + "/no-such-key.pem";
  std::string err =
      tulipa::run_until_complete(loop, refused({"protocol", "--tls", test_pki().server.cert, missing}, &status));
  EXPECT_EQ(status, 2);
  EXPECT_NE(err.find("--tls"), std::string::npos) << err;
  EXPECT_NE(err.find("no-such-key.pem"), std::string::npos) << err;
}

TEST(TulipaEchoTlsArguments, TlsWithoutFilesExitsWithStatus2) {
  tulipa::EventLoop loop;
  int status = -1;
  std::string err = tulipa::run_until_complete(loop, refused({"streams", "--tls", "cert.pem"}, &status));
  EXPECT_EQ(status, 2);
  EXPECT_NE(err.find("--tls needs CERT and KEY"), std::string::npos) << err;
}

TEST(TulipaEchoArguments, APortInUseExitsWithStatus1AndTheReason) {
  // A listener holds the port; tulipa_echo must say it cannot bind, not abort.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  for (const char* style : {"protocol", "streams"}) {
    tulipa::EventLoop loop;
    int status = -1;
    std::string err = tulipa::run_until_complete(loop, refused({style}, &status, ntohs(a.sin_port)));
    EXPECT_EQ(status, 1) << style;
    EXPECT_NE(err.find("Address already in use"), std::string::npos) << err;
  }
  ::close(fd);
}

// Starts tulipa_echo (through `prefix`, e.g. prlimit, when given) on a free port, with stderr piped, and waits for
// its "ready". Returns the process; `port` gets the port.
tulipa::Coro<tulipa::Process> start_echo(std::vector<std::string> prefix, std::string style, std::uint16_t* port) {
  *port = free_port();
  std::vector<std::string> argv = std::move(prefix);
  argv.insert(argv.end(), {TULIPA_ECHO_PATH, std::to_string(*port), style});
  tulipa::SubprocessOptions options;
  options.std_out = tulipa::Stdio::pipe();
  options.std_err = tulipa::Stdio::pipe();
  tulipa::Coro<tulipa::Process> spawn = tulipa::create_subprocess_exec(argv, options);
  tulipa::Process server = co_await std::move(spawn);
  tulipa::Bytes first_line = co_await server.std_out()->readline();
  EXPECT_EQ(first_line.str(), "ready\n");
  co_return server;
}

// A blocking client connection to 127.0.0.1:port (-1 on failure).
int connect_to(std::uint16_t port, int rcvbuf = 0) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

tulipa::Coro<tulipa::Bytes> first_stderr_line(tulipa::Process& p) { co_return co_await p.std_err()->readline(); }

// The protocol style stops reading a client that sends and never reads (pause_writing -> pause_reading): the
// client's sends stall once the kernel's buffers and the server's write buffer are full, instead of the server
// reading (and buffering) everything: before the fix, one such client grew the server by 252 MB. The client offers
// 256 MiB; a server that paused has taken far less than 64 MiB (its high-water mark plus the sockets' buffers)
// when the sends stall (no progress for 2 s). A server that kept reading would take all 256 MiB.
tulipa::Coro<std::size_t> flood_without_reading(std::uint16_t port) {
  const int fd = connect_to(port, 4096);
  EXPECT_GE(fd, 0);
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  std::vector<char> chunk(64 * 1024, 'f');
  std::size_t sent = 0;
  while (sent < (std::size_t{256} << 20)) {
    const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN) break;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 2000) == 0) break;  // stalled: the server no longer reads us
  }
  ::close(fd);
  co_return sent;
}

TEST(TulipaEchoFlowControl, ProtocolStyleStopsReadingAClientThatDoesNotRead) {
  tulipa::EventLoop loop;
  std::size_t sent = tulipa::run_until_complete(loop, [&]() -> tulipa::Coro<std::size_t> {
    std::uint16_t port = 0;
    // Named before the co_await (the g++ 12 rule for temporaries in a co_await operand, docs/coroutines.md).
    tulipa::Coro<tulipa::Process> start = start_echo({}, "protocol", &port);
    tulipa::Process server = co_await std::move(start);
    const std::size_t n = co_await flood_without_reading(port);
    server.terminate();
    EXPECT_EQ(co_await server.wait(), 0);
    co_return n;
  }());
  EXPECT_GT(sent, 0u);
  EXPECT_LT(sent, std::size_t{64} << 20) << "the server read " << sent << " bytes from a client that never reads";
}

// The streams style reports running out of descriptors (EMFILE) through the default exception handler (its
// handler silences only the connections' resets), so the operator hears of it. Run with 24 descriptors at most,
// 40 clients connect.
TEST(TulipaEchoFaults, StreamsStyleReportsEmfile) {
  tulipa::EventLoop loop;
  std::string report = tulipa::run_until_complete(loop, [&]() -> tulipa::Coro<std::string> {
    std::uint16_t port = 0;
    tulipa::Coro<tulipa::Process> start = start_echo({"prlimit", "--nofile=24:24", "--"}, "streams", &port);
    tulipa::Process server = co_await std::move(start);
    std::vector<int> clients;
    for (int i = 0; i < 40; ++i) clients.push_back(connect_to(port));
    // The report is the first line on stderr.
    tulipa::Coro<tulipa::Bytes> first_line = first_stderr_line(server);
    tulipa::Bytes got = co_await tulipa::timeout(std::chrono::seconds(30), std::move(first_line));
    const std::string line = got.str();
    for (int fd : clients) {
      if (fd >= 0) ::close(fd);
    }
    server.terminate();
    EXPECT_EQ(co_await server.wait(), 0);
    co_return line;
  }());
  EXPECT_NE(report.find("accept() failed (Too many open files)"), std::string::npos) << report;
}

}  // namespace
