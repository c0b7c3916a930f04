// Fault injection on real sockets, in milliseconds (as Seastar's loopback socket does for its stack): this test
// executable interposes read(), send() and sendmsg(), the calls the socket transport makes, and for the fds a test
// arms it injects what the network does rarely and at the worst moment: EAGAIN storms (spurious wake-ups), EINTR,
// short writes, and ECONNRESET in the middle of a write. Every other fd, and every fd once its plan is used up,
// goes straight to the C library. The transport (protocol API) and the streams run over them unchanged.
//
// Only this executable interposes (the functions are defined here, not in the shared test support): a static
// library resolves its read()/send()/sendmsg() against the executable's definitions first.
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <system_error>

#include "support/net_util.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/streams.hpp"

using namespace tulipa;
using namespace std::chrono_literals;

namespace {

// What to do to one fd's next calls. Counters run down as faults are injected.
struct FaultPlan {
  int read_eagain = 0;        // the next N reads fail with EAGAIN (the fd was reported readable: a spurious wake-up)
  int read_eintr = 0;         // then N reads fail with EINTR
  int write_eagain = 0;       // the next N send/sendmsg calls fail with EAGAIN
  int write_eintr = 0;        // then N fail with EINTR
  std::size_t write_cap = 0;  // every write sends at most this many bytes (short writes); 0: no cap
  long reset_after = -1;      // once this many bytes were sent, writes fail with ECONNRESET; -1: never
  std::size_t sent = 0;       // bytes sent so far through the plan
  int injected = 0;           // faults injected, to check that the paths were taken
};

bool armed = false;  // a plain flag first: nothing is looked up (nor constructed) until a test arms a plan
std::map<int, FaultPlan>& plans() {
  static std::map<int, FaultPlan> m;
  return m;
}
FaultPlan* plan_for(int fd) {
  if (!armed) return nullptr;
  auto it = plans().find(fd);
  return it == plans().end() ? nullptr : &it->second;
}

template <class F>
F real(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

// A write fault for `fd`, or 0 when the call should go through (with `cap` bytes at most).
int write_fault(FaultPlan& p, std::size_t& cap) {
  if (p.write_eagain > 0) {
    --p.write_eagain;
    ++p.injected;
    return EAGAIN;
  }
  if (p.write_eintr > 0) {
    --p.write_eintr;
    ++p.injected;
    return EINTR;
  }
  if (p.reset_after >= 0 && p.sent >= static_cast<std::size_t>(p.reset_after)) {
    ++p.injected;
    return ECONNRESET;
  }
  if (p.reset_after >= 0) cap = std::min(cap, static_cast<std::size_t>(p.reset_after) - p.sent);
  if (p.write_cap > 0) {
    if (cap > p.write_cap) ++p.injected;
    cap = std::min(cap, p.write_cap);
  }
  return 0;
}

}  // namespace

extern "C" ssize_t read(int fd, void* buf, std::size_t n) {
  static auto next = real<ssize_t (*)(int, void*, std::size_t)>("read");
  if (FaultPlan* p = plan_for(fd)) {
    int err = 0;
    if (p->read_eagain > 0) {
      --p->read_eagain;
      err = EAGAIN;
    } else if (p->read_eintr > 0) {
      --p->read_eintr;
      err = EINTR;
    }
    if (err) {
      ++p->injected;
      errno = err;
      return -1;
    }
  }
  return next(fd, buf, n);
}

extern "C" ssize_t send(int fd, const void* buf, std::size_t n, int flags) {
  static auto next = real<ssize_t (*)(int, const void*, std::size_t, int)>("send");
  FaultPlan* p = plan_for(fd);
  if (!p) return next(fd, buf, n, flags);
  std::size_t cap = n;
  if (int err = write_fault(*p, cap)) {
    errno = err;
    return -1;
  }
  ssize_t r = next(fd, buf, cap, flags);
  if (r > 0) p->sent += static_cast<std::size_t>(r);
  return r;
}

extern "C" ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  static auto next = real<ssize_t (*)(int, const msghdr*, int)>("sendmsg");
  FaultPlan* p = plan_for(fd);
  if (!p) return next(fd, msg, flags);
  std::size_t total = 0;
  for (std::size_t i = 0; i < msg->msg_iovlen; ++i) total += msg->msg_iov[i].iov_len;
  std::size_t cap = total;
  if (int err = write_fault(*p, cap)) {
    errno = err;
    return -1;
  }
  // A short write: the same vector, cut at `cap` bytes.
  iovec cut[64];
  msghdr m = *msg;
  std::size_t left = cap, k = 0;
  for (std::size_t i = 0; i < msg->msg_iovlen && left > 0 && k < 64; ++i, ++k) {
    cut[k] = msg->msg_iov[i];
    cut[k].iov_len = std::min(cut[k].iov_len, left);
    left -= cut[k].iov_len;
  }
  m.msg_iov = cut;
  m.msg_iovlen = k;
  ssize_t r = next(fd, &m, flags);
  if (r > 0) p->sent += static_cast<std::size_t>(r);
  return r;
}

namespace {

class FaultInjection : public ::testing::Test {
 protected:
  ~FaultInjection() override {
    armed = false;
    plans().clear();
  }
  FaultPlan& arm(int fd, FaultPlan plan) {
    armed = true;
    return plans()[fd] = plan;
  }
  // open_connection to 127.0.0.1:port, run to completion.
  StreamPair connect(std::uint16_t port) {
    return run_until_complete(loop, [](EventLoop& l, std::uint16_t p) -> Coro<StreamPair> {
      co_return co_await open_connection(l, "127.0.0.1", p);
    }(loop, port));
  }
  EventLoop loop;
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 253) % 26);
  return s;
}

// Reads everything from a raw (blocking) fd until EOF, or `n` bytes.
std::string read_raw(int fd, std::size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);  // recv: not interposed
    if (r <= 0) break;
    out.append(buf, static_cast<std::size_t>(r));
  }
  return out;
}

// A connected stream socket pair: ours for the transport (non-blocking), the peer's raw and blocking.
struct Pair {
  int ours = -1;
  int peer = -1;
  Pair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ours = sv[0];
    peer = sv[1];
    ::fcntl(ours, F_SETFL, ::fcntl(ours, F_GETFL) | O_NONBLOCK);
  }
  ~Pair() {
    if (peer >= 0) ::close(peer);
  }
};

}  // namespace

// ------------------------------------------------------------------------------------------- the transport

TEST_F(FaultInjection, TransportReadsThroughEagainAndEintrStorms) {
  Pair pair;
  test::Log log;
  FaultPlan& plan = arm(pair.ours, {.read_eagain = 200, .read_eintr = 200});
  Transport& t = connect_accepted_socket(loop, std::make_unique<test::Recorder>(log), pair.ours);
  const std::string data = pattern(100000);
  ASSERT_EQ(::write(pair.peer, data.data(), data.size() / 2), static_cast<ssize_t>(data.size() / 2));
  ASSERT_TRUE(test::run_until(loop, [&] { return log.received.size() == data.size() / 2; }));
  ASSERT_EQ(::write(pair.peer, data.data() + data.size() / 2, data.size() - data.size() / 2),
            static_cast<ssize_t>(data.size() - data.size() / 2));
  ::shutdown(pair.peer, SHUT_WR);
  ASSERT_TRUE(test::run_until(loop, [&] { return log.lost == 1; }));
  EXPECT_EQ(plan.injected, 400);
  EXPECT_EQ(log.received, data);
  EXPECT_EQ(log.error, nullptr);  // EAGAIN and EINTR are not errors
  EXPECT_EQ(log.eofs, 1);
  (void)t;
}

TEST_F(FaultInjection, TransportWritesThroughShortWritesEagainAndEintr) {
  Pair pair;
  test::Log log;
  FaultPlan& plan = arm(pair.ours, {.write_eagain = 50, .write_eintr = 50, .write_cap = 1000});
  Transport& t = connect_accepted_socket(loop, std::make_unique<test::Recorder>(log), pair.ours);
  const std::string data = pattern(1 << 20);
  t.write(data.substr(0, 300000));
  t.writelines(
      {test::bytes(std::string_view(data).substr(300000, 1000)), test::bytes(std::string_view(data).substr(301000))});
  t.close();  // flushes first
  std::string got;
  // The peer reads on this thread between loop passes (a blocking read would stall the loop: poll first).
  ASSERT_TRUE(test::run_until(loop, [&] {
    char buf[65536];
    ssize_t r;
    while ((r = ::recv(pair.peer, buf, sizeof buf, MSG_DONTWAIT)) > 0) got.append(buf, static_cast<std::size_t>(r));
    return r == 0 && log.lost == 1;
  }));
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_GE(plan.injected, 100 + 1000);  // the EAGAINs, the EINTRs, and >1000 cut writes (1 MiB in 1000-byte steps)
  EXPECT_EQ(log.error, nullptr);
}

TEST_F(FaultInjection, TransportResetMidWriteEndsTheConnectionWithTheError) {
  Pair pair;
  test::Log log;
  arm(pair.ours, {.write_cap = 4096, .reset_after = 10000});
  Transport& t = connect_accepted_socket(loop, std::make_unique<test::Recorder>(log), pair.ours);
  t.write(pattern(100000));  // 10,000 bytes go out, then the connection resets
  ASSERT_TRUE(test::run_until(loop, [&] { return log.lost == 1; }));
  ASSERT_NE(log.error, nullptr);
  try {
    std::rethrow_exception(log.error);
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNRESET);
  }
  EXPECT_EQ(read_raw(pair.peer, 10000), pattern(10000));  // what was sent before the reset arrived intact
  EXPECT_EQ(log.made, 1);
  EXPECT_EQ(log.received, "");
}

// ------------------------------------------------------------------------------------------- the streams

namespace {

// A listening TCP socket on 127.0.0.1 that the test accepts from itself (blocking), for open_connection.
struct RawListener {
  int fd = -1;
  std::uint16_t port = 0;
  RawListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd, 4), 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~RawListener() { ::close(fd); }
  int accept_one() { return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC); }
};

}  // namespace

TEST_F(FaultInjection, StreamsFramingSurvivesReadStorms) {
  RawListener listener;
  auto [reader, writer] = connect(listener.port);
  const int peer = listener.accept_one();
  ASSERT_GE(peer, 0);
  FaultPlan& plan = arm(writer.transport()->fd(), {.read_eagain = 300, .read_eintr = 300});
  const std::string lines = "first line\nsecond\r\nthird and last\n";
  for (char c : lines) ASSERT_EQ(::send(peer, &c, 1, 0), 1);  // one byte a segment, as chunked as it gets
  ::shutdown(peer, SHUT_WR);
  auto got = create_task(loop, [](StreamReader r) -> Coro<std::string> {
    std::string out = (co_await r.readline()).str();
    out += (co_await r.readuntil("\r\n")).str();
    out += (co_await r.readexactly(5)).str();
    out += (co_await r.read()).str();
    co_return out;
  }(reader));
  ASSERT_TRUE(test::run_until(loop, [&] { return got.done(); }));
  EXPECT_EQ(got.take_result(), lines);
  EXPECT_GT(plan.injected, 0);
  writer.close();
  ::close(peer);
  ASSERT_TRUE(test::run_until(loop, [&] { return writer.transport() == nullptr; }));
}

TEST_F(FaultInjection, StreamsDrainRaisesTheResetThatCameMidWrite) {
  RawListener listener;
  auto [reader, writer] = connect(listener.port);
  const int peer = listener.accept_one();
  ASSERT_GE(peer, 0);
  arm(writer.transport()->fd(), {.write_cap = 1500, .reset_after = 50000});
  auto result = create_task(loop, [](StreamReader r, StreamWriter w) -> Coro<std::string> {
    const std::string chunk = pattern(16384);
    int drain_error = 0;
    try {
      for (int i = 0; i < 64; ++i) {  // 1 MiB in short writes; the reset comes after 50,000 bytes
        w.write(chunk);
        co_await w.drain();
      }
    } catch (const std::system_error& e) {
      drain_error = e.code().value();
    }
    if (drain_error != ECONNRESET) co_return "drain: " + std::to_string(drain_error);
    try {
      (void)co_await r.read(10);  // the reader sees the same error
    } catch (const std::system_error& e) {
      co_return "drain and read: " + std::to_string(e.code().value() == ECONNRESET);
    }
    co_return "drain only";
  }(reader, writer));
  ASSERT_TRUE(test::run_until(loop, [&] { return result.done(); }));
  EXPECT_EQ(result.take_result(), "drain and read: 1");
  const std::string sent = read_raw(peer, 50000);
  EXPECT_EQ(sent.size(), 50000u);
  EXPECT_TRUE(sent == (pattern(16384) + pattern(16384) + pattern(16384) + pattern(16384)).substr(0, 50000));
  ::close(peer);
}
