// The socket transport over real loopback TCP connections: data in both directions, the protocol's call order,
// half-close both ways, resets, flow control in both directions, and 64 MiB through one connection.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "support/net_util.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

using namespace tulipa;
using namespace tulipa::test;

namespace {

class TransportTest : public ::testing::Test {
 protected:
  TransportTest() {
    loop.set_exception_handler([this](EventLoop&, const ErrorContext& c) { reported.push_back(c.message); });
  }
  ~TransportTest() override {
    server.close();
    server.abort_clients();
    settle(loop);
  }
  // A server whose connections record into `server_log` (one connection at a time in these tests).
  SocketAddress listen(Log& server_log) {
    server = create_server(loop, recorder_factory(server_log), "127.0.0.1", 0);
    return server.sockets().at(0);
  }

  // Logs live in the fixture: connections still open when a test body returns end in the destructor, and their
  // protocols write to their logs then.
  Log& log() { return logs.emplace_back(); }

  std::deque<Log> logs;
  EventLoop loop;
  Server server;
  std::vector<std::string> reported;
};

TEST_F(TransportTest, EchoesAndReportsAddresses) {
  Log& s = log();
  Log& c = log();
  s.on_data = [](Log& l, std::span<const std::byte> d) { l.transport->write(d); };
  SocketAddress addr = listen(s);
  Transport* t = connect_to(loop, addr, c);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(c.made, 1);
  EXPECT_EQ(t->peername(), addr);
  EXPECT_EQ(t->sockname().host(), "127.0.0.1");
  EXPECT_GE(t->fd(), 0);
  EXPECT_FALSE(t->is_closing());
  EXPECT_TRUE(t->is_reading());
  EXPECT_TRUE(t->can_write_eof());
  EXPECT_EQ(&t->get_loop(), &loop);

  t->write("hello, ");
  t->write(bytes("tulipa"));
  ASSERT_TRUE(run_until(loop, [&] { return c.received.size() == 13; }));
  EXPECT_EQ(c.received, "hello, tulipa");
  ASSERT_NE(s.transport, nullptr);
  EXPECT_EQ(s.transport->peername(), t->sockname());
  EXPECT_EQ(server.active_connections(), 1u);

  t->close();
  EXPECT_TRUE(t->is_closing());
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1 && s.lost == 1; }));
  EXPECT_EQ(c.error, nullptr);
  EXPECT_EQ(s.error, nullptr);
  // The server saw: made, data, eof (the client's close), lost; each exactly once.
  EXPECT_EQ(s.order, (std::vector<std::string>{"made", "data", "eof", "lost"}));
  EXPECT_EQ(c.order, (std::vector<std::string>{"made", "data", "lost"}));
  EXPECT_EQ(server.active_connections(), 0u);
  EXPECT_TRUE(reported.empty());
}

TEST_F(TransportTest, ConnectionLostComesAsItsOwnCallbackAfterClose) {
  Log& s = log();
  Log& c = log();
  SocketAddress addr = listen(s);
  Transport* t = connect_to(loop, addr, c);
  ASSERT_NE(t, nullptr);
  t->close();
  t->close();  // idempotent
  t->abort();  // after close: still one connection_lost
  EXPECT_EQ(c.lost, 0) << "connection_lost must not run inside close()";
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1 && s.lost == 1; }));
  settle(loop);
  EXPECT_EQ(c.lost, 1);
}

TEST_F(TransportTest, WritevOfManyPiecesAndWritesAfterCloseAreDropped) {
  Log& s = log();
  Log& c = log();
  SocketAddress addr = listen(s);
  Transport* t = connect_to(loop, addr, c);
  ASSERT_NE(t, nullptr);
  std::string a = "one ", b = "two ", d = "three";
  t->writelines({bytes(a), bytes(""), bytes(b), bytes(d)});
  ASSERT_TRUE(run_until(loop, [&] { return s.received.size() == 13; }));
  EXPECT_EQ(s.received, "one two three");
  t->close();
  t->write("ignored");  // the connection is going away: dropped, as asyncio does
  ASSERT_TRUE(run_until(loop, [&] { return s.lost == 1; }));
  EXPECT_EQ(s.received, "one two three");
}

// The client sends, then shuts down its sending side; the server keeps its side open (eof_received -> true),
// answers, and closes. The client gets the whole answer and then EOF.
TEST_F(TransportTest, HalfCloseFromThePeer) {
  Log& s = log();
  s.keep_open_on_eof = true;
  s.on_eof = [](Log& l) {
    std::string reply = "you said: " + l.received;
    l.transport->write(reply);
    l.transport->close();
  };
  SocketAddress addr = listen(s);
  int fd = raw_connect(addr);
  ASSERT_EQ(::write(fd, "ping", 4), 4);
  ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
  EXPECT_EQ(raw_read_to_eof(loop, fd), "you said: ping");
  ASSERT_TRUE(run_until(loop, [&] { return s.lost == 1; }));
  EXPECT_EQ(s.order, (std::vector<std::string>{"made", "data", "eof", "lost"}));
  EXPECT_EQ(s.error, nullptr);
  ::close(fd);
}

// The server sends and then write_eof(); it can still read. The client answers after the EOF; the server gets the
// answer, then the client's EOF, and with both directions done the connection ends by itself.
TEST_F(TransportTest, HalfCloseFromUs) {
  Log& s = log();
  s.keep_open_on_eof = true;
  s.on_made = [](Log& l) {
    l.transport->write("hello");
    l.transport->write_eof();
    EXPECT_THROW(l.transport->write("more"), std::logic_error);
  };
  SocketAddress addr = listen(s);
  int fd = raw_connect(addr);
  EXPECT_EQ(raw_read_to_eof(loop, fd), "hello");
  ASSERT_EQ(::write(fd, "answer", 6), 6);
  ASSERT_TRUE(run_until(loop, [&] { return s.received == "answer"; }));
  EXPECT_EQ(s.lost, 0) << "our EOF must not end the reading side";
  ::shutdown(fd, SHUT_WR);
  ASSERT_TRUE(run_until(loop, [&] { return s.lost == 1; }));
  EXPECT_EQ(s.order, (std::vector<std::string>{"made", "data", "eof", "lost"}));
  ::close(fd);
}

// write_eof with data still queued: the EOF goes out only after the queue drained.
TEST_F(TransportTest, WriteEofWaitsForTheQueue) {
  Log& s = log();
  Log& c = log();
  const std::string big(8 << 20, 'x');
  s.on_made = [&](Log& l) {
    l.transport->write(big);
    EXPECT_GT(l.transport->get_write_buffer_size(), 0u);
    l.transport->write_eof();
  };
  SocketAddress addr = listen(s);
  c.keep_open_on_eof = true;
  Transport* t = connect_to(loop, addr, c);
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(run_until(loop, [&] { return c.eofs == 1; }));
  EXPECT_EQ(c.received.size(), big.size());
  EXPECT_EQ(c.received, big);
  t->close();
  ASSERT_TRUE(run_until(loop, [&] { return s.lost == 1 && c.lost == 1; }));
}

// The peer resets the connection while we have a full write queue: connection_lost gets the OS error.
TEST_F(TransportTest, PeerResetMidWrite) {
  Log& s = log();
  s.on_made = [](Log& l) {
    l.transport->set_write_buffer_limits(SIZE_MAX / 2);
    l.transport->write(std::string(16 << 20, 'r'));
  };
  SocketAddress addr = listen(s);
  int fd = raw_connect(addr);
  ASSERT_TRUE(run_until(loop, [&] { return s.made == 1; }));
  ASSERT_GT(s.transport->get_write_buffer_size(), 0u);
  // SO_LINGER with a zero timeout: close() sends RST instead of FIN.
  linger lg{1, 0};
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  ::close(fd);
  ASSERT_TRUE(run_until(loop, [&] { return s.lost == 1; }));
  ASSERT_NE(s.error, nullptr);
  try {
    std::rethrow_exception(s.error);
  } catch (const std::system_error& e) {
    EXPECT_TRUE(e.code().value() == ECONNRESET || e.code().value() == EPIPE) << e.what();
  }
  EXPECT_TRUE(reported.empty()) << "an OS error goes to connection_lost, not to the exception handler";
}

// A reader that does not read: the writer's buffer passes the high-water mark (pause_writing), then the reader
// drains it and the buffer falls to the low-water mark (resume_writing).
TEST_F(TransportTest, SlowReaderDrivesPauseAndResumeWriting) {
  Log& s = log();
  const std::string piece(64 * 1024, 'w');
  std::size_t written = 0;
  s.on_made = [&](Log& l) {
    l.transport->set_write_buffer_limits(256 * 1024);
    EXPECT_EQ(l.transport->get_write_buffer_limits().high, 256u * 1024);
    EXPECT_EQ(l.transport->get_write_buffer_limits().low, 64u * 1024);
    // Write until the transport asks us to stop, as a well-behaved producer does.
    while (l.paused == 0) {
      l.transport->write(piece);
      written += piece.size();
    }
    EXPECT_GT(l.transport->get_write_buffer_size(), 256u * 1024);
  };
  SocketAddress addr = listen(s);
  int fd = raw_connect(addr);
  ASSERT_TRUE(run_until(loop, [&] { return s.paused == 1; }));
  EXPECT_EQ(s.resumed, 0);
  std::string got = raw_read(loop, fd, written);
  EXPECT_EQ(got.size(), written);
  ASSERT_TRUE(run_until(loop, [&] { return s.resumed == 1; }));
  EXPECT_LE(s.transport->get_write_buffer_size(), 64u * 1024);
  EXPECT_EQ(s.order, (std::vector<std::string>{"made", "pause", "resume"}));
  EXPECT_THROW(s.transport->set_write_buffer_limits(10, 20), std::invalid_argument);
  ::close(fd);
}

TEST_F(TransportTest, PauseReadingStopsDataReceived) {
  Log& s = log();
  s.on_made = [](Log& l) { l.transport->pause_reading(); };
  SocketAddress addr = listen(s);
  int fd = raw_connect(addr);
  ASSERT_TRUE(run_until(loop, [&] { return s.made == 1; }));
  EXPECT_FALSE(s.transport->is_reading());
  ASSERT_EQ(::write(fd, "abc", 3), 3);
  // A connection of our own, echoed through the same loop, shows the loop went round while the paused one
  // stayed unread.
  Log& probe = log();
  Server echo = create_server(loop, [] { return std::make_unique<Echo>(); }, "127.0.0.1", 0);
  Transport* p = connect_to(loop, echo.sockets().at(0), probe);
  ASSERT_NE(p, nullptr);
  p->write("x");
  ASSERT_TRUE(run_until(loop, [&] { return probe.received == "x"; }));
  EXPECT_EQ(s.received, "");
  s.transport->resume_reading();
  EXPECT_TRUE(s.transport->is_reading());
  ASSERT_TRUE(run_until(loop, [&] { return s.received == "abc"; }));
  p->close();
  echo.close();
  ASSERT_TRUE(run_until(loop, [&] { return probe.lost == 1; }));
  ::close(fd);
}

TEST_F(TransportTest, AbortDropsTheQueue) {
  Log& s = log();
  s.on_made = [](Log& l) {
    l.transport->write(std::string(16 << 20, 'a'));
    l.transport->abort();
    EXPECT_TRUE(l.transport->is_closing());
  };
  SocketAddress addr = listen(s);
  int fd = raw_connect(addr);
  std::string got = raw_read_to_eof(loop, fd);
  EXPECT_LT(got.size(), std::size_t{16 << 20});
  ASSERT_TRUE(run_until(loop, [&] { return s.lost == 1; }));
  EXPECT_EQ(s.error, nullptr);
  ::close(fd);
}

TEST_F(TransportTest, ProtocolExceptionIsReportedAndAbortsTheConnection) {
  Log& s = log();
  s.on_data = [](Log&, std::span<const std::byte>) { throw std::runtime_error("bad request"); };
  SocketAddress addr = listen(s);
  int fd = raw_connect(addr);
  ASSERT_EQ(::write(fd, "x", 1), 1);
  ASSERT_TRUE(run_until(loop, [&] { return s.lost == 1; }));
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_NE(reported[0].find("data_received"), std::string::npos);
  ASSERT_NE(s.error, nullptr);
  EXPECT_THROW(std::rethrow_exception(s.error), std::runtime_error);
  EXPECT_EQ(raw_read_to_eof(loop, fd), "");
  ::close(fd);
}

// 64 MiB through one connection and back, with back-pressure on both sides: the client stops producing on
// pause_writing, the server (a BufferedProtocol reading into its own memory) stops reading while its own writes
// are paused. Every byte is checked.
struct BufferedEcho : BufferedProtocol {
  Transport* t = nullptr;
  std::byte buf[16384];
  std::size_t updates = 0;
  int* lost;
  explicit BufferedEcho(int* l) : lost(l) {}
  void connection_made(Transport& tr) override { t = &tr; }
  std::span<std::byte> get_buffer(std::size_t hint) override {
    EXPECT_GT(hint, 0u);
    return buf;
  }
  void buffer_updated(std::size_t n) override {
    ++updates;
    t->write(std::span<const std::byte>(buf, n));
  }
  bool eof_received() override {
    t->write_eof();
    return true;
  }
  void pause_writing() override { t->pause_reading(); }
  void resume_writing() override { t->resume_reading(); }
  void connection_lost(std::exception_ptr) override { ++*lost; }
};

TEST_F(TransportTest, SixtyFourMiBIntactThroughBufferedEcho) {
  int server_lost = 0;
  server = create_server(loop, [&] { return std::make_unique<BufferedEcho>(&server_lost); }, "127.0.0.1", 0);
  constexpr std::size_t total = 64u << 20;
  auto pattern = [](std::size_t i) { return static_cast<char>((i * 131 + (i >> 12)) & 0xff); };
  std::size_t sent = 0, checked = 0;
  bool mismatch = false;
  std::string chunk(256 * 1024, '\0');
  Log& c = log();
  c.keep_open_on_eof = true;
  std::function<void(Log&)> produce = [&](Log& l) {
    while (l.paused == l.resumed && sent < total) {
      std::size_t n = std::min(chunk.size(), total - sent);
      for (std::size_t i = 0; i < n; ++i) chunk[i] = pattern(sent + i);
      l.transport->write(std::string_view(chunk.data(), n));
      sent += n;
    }
    if (sent == total && l.transport->get_write_buffer_size() == 0 && l.eofs == 0) l.transport->write_eof();
  };
  c.on_made = produce;
  c.on_resume = produce;
  c.on_data = [&](Log& l, std::span<const std::byte> d) {
    for (std::size_t i = 0; i < d.size() && !mismatch; ++i) mismatch = static_cast<char>(d[i]) != pattern(checked + i);
    checked += d.size();
    l.received.clear();  // checked; do not keep 64 MiB
  };
  Transport* t = connect_to(loop, server.sockets().at(0), c);
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(run_until(
      loop,
      [&] {
        if (sent == total && c.transport && c.transport->get_write_buffer_size() == 0 && !c.transport->is_closing()) {
          // All handed to the kernel: send our EOF (write_eof is idempotent).
          c.transport->write_eof();
        }
        return c.eofs == 1;
      },
      std::chrono::seconds(120)));
  EXPECT_FALSE(mismatch);
  EXPECT_EQ(checked, total);
  EXPECT_GE(c.paused, 1) << "64 MiB must have hit the high-water mark at least once";
  // Both sides sent and received EOF: both connections end by themselves.
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1 && server_lost == 1; }));
  EXPECT_EQ(c.error, nullptr);
}

TEST_F(TransportTest, SetProtocolHandsOver) {
  Log& s = log();
  Log& first = log();
  Log& second = log();
  SocketAddress addr = listen(s);
  Transport* t = connect_to(loop, addr, first);
  ASSERT_NE(t, nullptr);
  std::unique_ptr<StreamProtocol> old = t->set_protocol(std::make_unique<Recorder>(second));
  EXPECT_EQ(&static_cast<Recorder&>(*old).log, &first);
  EXPECT_EQ(&static_cast<Recorder&>(t->get_protocol()).log, &second);
  second.transport = t;
  s.transport->write("to the second");
  ASSERT_TRUE(run_until(loop, [&] { return second.received == "to the second"; }));
  EXPECT_EQ(first.received, "");
  t->close();
  ASSERT_TRUE(run_until(loop, [&] { return second.lost == 1; }));
  EXPECT_EQ(first.lost, 0);
}

TEST_F(TransportTest, ConnectAcceptedSocketWrapsAConnectedFd) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Log& a = log();
  Log& b = log();
  Transport& ta = connect_accepted_socket(loop, std::make_unique<Recorder>(a), sv[0]);
  connect_accepted_socket(loop, std::make_unique<Recorder>(b), sv[1]);
  EXPECT_EQ(a.made, 1);
  EXPECT_EQ(b.made, 1);
  ta.write("across");
  ASSERT_TRUE(run_until(loop, [&] { return b.received == "across"; }));
  ta.close();
  ASSERT_TRUE(run_until(loop, [&] { return a.lost == 1 && b.lost == 1; }));
  EXPECT_THROW(connect_accepted_socket(loop, std::make_unique<Recorder>(a), -1), std::system_error);
  EXPECT_THROW(connect_accepted_socket(loop, nullptr, 0), std::invalid_argument);
}

}  // namespace

// A connection still open when its loop closes ends there: connection_lost, the fd closed, the transport and its
// protocol freed (LeakSanitizer checks the freeing under ASan). So does one whose connection_lost callback was still
// pending: dropping that callback ends it.
TEST(TransportLoopCloseTest, OpenConnectionsEndWhenTheLoopCloses) {
  Log s, c, aborted_c;
  EventLoop loop;
  Server server = create_server(loop, recorder_factory(s), "127.0.0.1", 0);
  Transport* t = connect_to(loop, server.sockets().at(0), c);
  ASSERT_NE(t, nullptr);
  Transport* u = connect_to(loop, server.sockets().at(0), aborted_c);
  ASSERT_NE(u, nullptr);
  ASSERT_TRUE(run_until(loop, [&] { return s.made == 2; }));
  t->write("unread");
  int fd = t->fd();
  u->abort();      // its connection_lost is now a pending callback
  server.close();  // stops listening; the connections go on
  loop.close();
  EXPECT_EQ(c.lost, 1);
  EXPECT_EQ(aborted_c.lost, 1);
  EXPECT_EQ(s.lost, 2);
  EXPECT_EQ(server.active_connections(), 0u);
  errno = 0;
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

// --- the completion transport (io_uring operations: multishot receive into provided buffers, queued sends)

namespace {
// A loop on io_uring with only `buffers` provided buffers (and a submission queue of `entries`: the completion
// queue holds 4 times that), or null where the kernel refuses io_uring.
std::unique_ptr<EventLoop> uring_loop(unsigned buffers, unsigned entries = 256) {
  if (!uring_available()) return nullptr;
  try {
    LoopOptions o;
    o.selector = std::make_unique<UringSelector>(entries, buffers);
    return std::make_unique<EventLoop>(std::move(o));
  } catch (const std::system_error&) {
    return nullptr;
  }
}
char pattern_at(std::size_t i) { return static_cast<char>('a' + (i * 7 + i / 4096) % 26); }
std::string patterned(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = pattern_at(i);
  return s;
}
}  // namespace

// Four 8 KiB buffers for four connections that each send 256 KiB at once: every receive runs out of buffers
// (ENOBUFS ends it without IORING_CQE_F_MORE) and must be armed again, and every byte still arrives in order.
TEST(UringCompletionTest, ReceivesRunOutOfProvidedBuffersAndAreArmedAgain) {
  auto loop = uring_loop(4);
  if (!loop) GTEST_SKIP() << "io_uring refused here";
  std::deque<Log> server_logs;
  Server server = create_server(
      *loop,
      [&]() -> std::unique_ptr<StreamProtocol> { return std::make_unique<Recorder>(server_logs.emplace_back()); },
      "127.0.0.1", 0);
  const std::string payload = patterned(256 * 1024);
  std::deque<Log> clients(4);
  for (Log& c : clients) {
    ASSERT_NE(connect_to(*loop, server.sockets().at(0), c), nullptr);
    c.transport->write(payload);
  }
  ASSERT_TRUE(run_until(*loop, [&] {
    if (server_logs.size() < 4) return false;
    for (Log& s : server_logs)
      if (s.received.size() < payload.size()) return false;
    return true;
  }));
  for (Log& s : server_logs) EXPECT_TRUE(s.received == payload);
  EXPECT_GT(static_cast<UringSelector&>(loop->selector()).buffer_shortages(), 0u);
  for (Log& c : clients) c.transport->close();
  ASSERT_TRUE(run_until(*loop, [&] { return server.active_connections() == 0; }));
}

// More completions at once than the completion queue holds: a ring of 8 SQEs has a CQ of 32, and 64 connections
// waiting in the backlog, each with 24 KiB and its EOF already sent, make the multishot accept post 64 completions in
// one go, then the 64 multishot receives (three 8 KiB buffers and an EOF each), then the echoes' sends. What does
// not fit waits in the kernel's overflow list (IORING_FEAT_NODROP); the loop flushes it and reaps again in the same
// pass. Nothing may be lost: every connection accepted, every byte echoed in order, every EOF seen.
TEST(UringCompletionTest, CompletionQueueOverflowLosesNoOperation) {
  auto loop = uring_loop(512, 8);
  if (!loop) GTEST_SKIP() << "io_uring refused here";
  constexpr int kClients = 64;
  constexpr std::size_t kBytes = 24 * 1024;
  std::deque<Log> server_logs;
  Server server = create_server(
      *loop,
      [&]() -> std::unique_ptr<StreamProtocol> {
        Log& l = server_logs.emplace_back();
        l.on_data = [](Log& self, std::span<const std::byte> d) { self.transport->write(d); };
        return std::make_unique<Recorder>(l);
      },
      "127.0.0.1", 0);
  loop->call_soon([] {});
  loop->run_once();  // the multishot accept is armed, with nothing to accept yet
  std::vector<int> clients;
  std::vector<std::string> payloads;
  for (int i = 0; i < kClients; ++i) {
    int fd = raw_connect(server.sockets().at(0));
    std::string payload = std::to_string(i) + ":" + patterned(kBytes + std::size_t(i));
    ASSERT_EQ(::write(fd, payload.data(), payload.size()), static_cast<ssize_t>(payload.size()));
    ::shutdown(fd, SHUT_WR);
    clients.push_back(fd);
    payloads.push_back(std::move(payload));
  }
  ASSERT_TRUE(run_until(*loop, [&] { return server.active_connections() == 0 && server_logs.size() == kClients; }));
  EXPECT_GT(static_cast<UringSelector&>(loop->selector()).overflow_flushes(), 0u);
  std::vector<std::string> received;  // by the connection's own prefix, whatever the order of accepting
  received.resize(kClients);
  for (const Log& s : server_logs) {
    EXPECT_EQ(s.eofs, 1);
    EXPECT_EQ(s.lost, 1);
    const int id = std::atoi(s.received.c_str());
    ASSERT_TRUE(id >= 0 && id < kClients);
    EXPECT_TRUE(received[std::size_t(id)].empty()) << "connection " << id << " twice";
    received[std::size_t(id)] = s.received;
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_TRUE(received[std::size_t(i)] == payloads[std::size_t(i)]) << "connection " << i;
    // The echo, then the server's close: all of it is in the client's socket by now.
    ::fcntl(clients[std::size_t(i)], F_SETFL, ::fcntl(clients[std::size_t(i)], F_GETFL) & ~O_NONBLOCK);
    std::string echoed;
    char buf[65536];
    for (ssize_t n; (n = ::read(clients[std::size_t(i)], buf, sizeof buf)) > 0;) echoed.append(buf, std::size_t(n));
    EXPECT_TRUE(echoed == payloads[std::size_t(i)]) << "echo " << i;
    ::close(clients[std::size_t(i)]);
  }
}

// A peer that stops reading: the client's sends queue behind the one in flight (pause_writing above the high-water
// mark); when the peer reads again, everything arrives in order and the queue drains (resume_writing).
TEST(UringCompletionTest, PeerThatStopsReadingQueuesSendsThenDrains) {
  auto loop = uring_loop(512);
  if (!loop) GTEST_SKIP() << "io_uring refused here";
  Log s, c;
  s.on_made = [](Log& l) { l.transport->pause_reading(); };
  Server server = create_server(*loop, recorder_factory(s), "127.0.0.1", 0);
  ASSERT_NE(connect_to(*loop, server.sockets().at(0), c), nullptr);
  const std::string payload = patterned(16 * 1024 * 1024);
  for (std::size_t off = 0; off < payload.size(); off += 64 * 1024) c.transport->write(payload.substr(off, 64 * 1024));
  ASSERT_TRUE(run_until(*loop, [&] { return s.made == 1; }));
  // The kernel's socket buffers fill; what it does not take waits in the client's queue.
  loop->call_soon([] {});
  loop->run_once();
  EXPECT_GE(c.paused, 1);
  EXPECT_GT(c.transport->get_write_buffer_size(), 0u);
  s.transport->resume_reading();
  ASSERT_TRUE(run_until(*loop, [&] { return s.received.size() == payload.size(); }));
  EXPECT_TRUE(s.received == payload);
  EXPECT_EQ(c.transport->get_write_buffer_size(), 0u);
  EXPECT_EQ(c.resumed, 1);
  c.transport->close();
  ASSERT_TRUE(run_until(*loop, [&] { return c.lost == 1 && s.lost == 1; }));
  EXPECT_EQ(c.error, nullptr);
}

// Ending a connection with a send blocked in the kernel (its queue's memory in use) and a receive armed (a provided
// buffer named): both are cancelled, and the transport, its queue and its buffers live until the cancelled
// operations' completions arrived (ASan sees a use after free otherwise). Then the loop closes with connections
// whose operations are still in flight: the ring's teardown delivers their last completions.
TEST(UringCompletionTest, AbortCancelsOperationsAndWaitsForTheirCompletions) {
  auto loop = uring_loop(512);
  if (!loop) GTEST_SKIP() << "io_uring refused here";
  Log s, c, idle_s, idle_c;
  s.on_made = [](Log& l) { l.transport->pause_reading(); };
  Server server = create_server(*loop, recorder_factory(s), "127.0.0.1", 0);
  ASSERT_NE(connect_to(*loop, server.sockets().at(0), c), nullptr);
  const std::string block(1024 * 1024, 'z');
  for (int i = 0; i < 16; ++i) c.transport->write(block);
  ASSERT_TRUE(run_until(*loop, [&] { return s.made == 1; }));
  loop->call_soon([] {});
  loop->run_once();
  ASSERT_GT(c.transport->get_write_buffer_size(), 0u);
  c.transport->abort();
  ASSERT_TRUE(run_until(*loop, [&] { return c.lost == 1; }));
  EXPECT_EQ(c.error, nullptr);
  s.transport->abort();  // paused, it would not notice the reset
  ASSERT_TRUE(run_until(*loop, [&] { return s.lost == 1; }));
  // Open connections with a receive armed on both sides when the loop closes.
  Server other = create_server(*loop, recorder_factory(idle_s), "127.0.0.1", 0);
  ASSERT_NE(connect_to(*loop, other.sockets().at(0), idle_c), nullptr);
  ASSERT_TRUE(run_until(*loop, [&] { return idle_s.made == 1; }));
  idle_c.transport->write("in flight");
  loop->close();
  EXPECT_EQ(idle_c.lost, 1);
  EXPECT_EQ(idle_s.lost, 1);
}
