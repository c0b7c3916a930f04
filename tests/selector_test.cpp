// The selector contract (include/tulipa/selector.hpp), one suite run against every backend: epoll, epoll forced onto
// its millisecond epoll_wait path, poll, and whatever make_default_selector() builds.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <new>

#include <gtest/gtest.h>

#include "selectors/timeout.hpp"
#include "tulipa/selector.hpp"

// Counts allocations while `counting` is on, to check that select() allocates nothing in steady state.
namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// noinline: inlined, g++ 12 sees free() on what operator new returned and warns (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace tulipa {
namespace {

using namespace std::chrono_literals;

// ---- small RAII helpers

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd r, w;
  Pipe() {
    int p[2];
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
    r = Fd(p[0]);
    w = Fd(p[1]);
  }
};

struct SocketPair {
  Fd a, b;
  SocketPair() {
    int s[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) != 0) {
      throw std::system_error(errno, std::system_category(), "socketpair");
    }
    a = Fd(s[0]);
    b = Fd(s[1]);
  }
};

void write_byte(int fd) { ASSERT_EQ(::write(fd, "x", 1), 1) << std::strerror(errno); }

const SelectorEvent* find_event(std::span<const SelectorEvent> events, int fd) {
  for (const auto& e : events) {
    if (e.fd == fd) return &e;
  }
  return nullptr;
}

template <class F>
void expect_errno(F&& f, int err) {
  try {
    f();
    ADD_FAILURE() << "expected std::system_error(" << std::strerror(err) << ")";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), err) << e.what();
  }
}

// Raises the soft RLIMIT_NOFILE as far as allowed (the hard limit too, when privileged) and restores it after.
class FdLimit {
 public:
  explicit FdLimit(rlim_t wanted) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit raised{wanted, wanted};
    if (saved_.rlim_max >= wanted || ::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      raised.rlim_max = saved_.rlim_max;
      raised.rlim_cur = std::min(wanted, saved_.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &raised);
    }
    rlimit now{};
    ::getrlimit(RLIMIT_NOFILE, &now);
    limit_ = now.rlim_cur;
  }
  ~FdLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  rlim_t limit() const { return limit_; }

 private:
  rlimit saved_{};
  rlim_t limit_ = 0;
};

// Waits until thread `tid` sleeps in the kernel (state S in /proc): the thread under test only calls select(), so
// this means it blocks in epoll/ppoll. An event, not a sleep: it reads the thread's state, yielding in between.
void wait_until_blocked(pid_t tid) {
  std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  for (;;) {
    std::ifstream in(path);
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'S') return;
    std::this_thread::yield();
  }
}

// An io_uring ring closed on this thread (by an earlier test of this process) interrupts one later blocking wait when
// the kernel's teardown of it ends, like a signal. The tests that time a wait first let those interruptions land
// here: a 60 ms ppoll that times out (rather than being interrupted) means none is pending any more (the kernel's
// exit work for a ring retries its notification every 50 ms while the ring's requests are being cancelled).
void absorb_ring_teardown_interrupts() {
  timespec ts{0, 60'000'000};
  for (int i = 0; i < 200 && ::ppoll(nullptr, 0, &ts, nullptr) < 0 && errno == EINTR; ++i) {
  }
}

// ---- the backends

struct Backend {
  const char* name;
  std::unique_ptr<Selector> (*make)();
};

const Backend backends[] = {
    {"epoll", [] { return make_epoll_selector(); }},
    {"epoll_ms", []() -> std::unique_ptr<Selector> { return std::make_unique<EpollSelector>(false); }},
    {"poll", [] { return make_poll_selector(); }},
    {"uring", [] { return make_uring_selector(); }},
    {"default", [] { return make_default_selector(); }},
};

class SelectorTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    try {
      sel = GetParam().make();
    } catch (const std::system_error& e) {
      GTEST_SKIP() << "backend refused here: " << e.what();  // io_uring in a container that forbids it
    }
  }
  std::unique_ptr<Selector> sel;
  bool is_poll() const { return sel->name() == "poll"; }
  // poll and io_uring's poll watch regular files (always ready); epoll refuses them.
  bool watches_regular_files() const { return sel->name() == "poll" || sel->name() == "uring"; }
};

INSTANTIATE_TEST_SUITE_P(Backends, SelectorTest, ::testing::ValuesIn(backends),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_P(SelectorTest, ReportsReadReadinessWithUserData) {
  Pipe p;
  int tag = 0;
  sel->register_fd(p.r.get(), Events::read, &tag);
  EXPECT_TRUE(sel->is_registered(p.r.get()));
  EXPECT_TRUE(sel->select(Duration::zero()).empty());

  write_byte(p.w.get());
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].fd, p.r.get());
  EXPECT_EQ(ready[0].events, Events::read);
  EXPECT_EQ(ready[0].data, &tag);
}

TEST_P(SelectorTest, LevelTriggeredReportsAgainUntilDrained) {
  Pipe p;
  sel->register_fd(p.r.get(), Events::read, nullptr);
  write_byte(p.w.get());
  EXPECT_EQ(sel->select(Duration::zero()).size(), 1u);
  EXPECT_EQ(sel->select(Duration::zero()).size(), 1u);  // nothing read yet: still ready
  char c;
  ASSERT_EQ(::read(p.r.get(), &c, 1), 1);
  EXPECT_TRUE(sel->select(Duration::zero()).empty());
}

TEST_P(SelectorTest, ReportsWriteReadinessOnSocketAndPipe) {
  SocketPair s;
  Pipe p;
  int a = 1, b = 2;
  sel->register_fd(s.a.get(), Events::write, &a);
  sel->register_fd(p.w.get(), Events::write, &b);
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 2u);
  const SelectorEvent* es = find_event(ready, s.a.get());
  const SelectorEvent* ep = find_event(ready, p.w.get());
  ASSERT_TRUE(es && ep);
  EXPECT_EQ(es->events, Events::write);
  EXPECT_EQ(es->data, &a);
  EXPECT_EQ(ep->events, Events::write);
  EXPECT_EQ(ep->data, &b);
}

TEST_P(SelectorTest, ReadWriteInterestReportsBoth) {
  SocketPair s;
  sel->register_fd(s.a.get(), Events::read_write, nullptr);
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].events, Events::write);  // nothing to read yet

  write_byte(s.b.get());
  ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].events, Events::read_write);
}

TEST_P(SelectorTest, ModifyChangesInterestAndData) {
  SocketPair s;
  int first = 1, second = 2;
  sel->register_fd(s.a.get(), Events::read, &first);
  EXPECT_TRUE(sel->select(Duration::zero()).empty());

  sel->modify(s.a.get(), Events::write, &second);
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].events, Events::write);
  EXPECT_EQ(ready[0].data, &second);

  sel->modify(s.a.get(), Events::write, &first);  // data only
  ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].data, &first);

  sel->modify(s.a.get(), Events::read, &first);
  EXPECT_TRUE(sel->select(Duration::zero()).empty());
}

TEST_P(SelectorTest, UnregisterStopsReportsAndAllowsRegisteringAgain) {
  Pipe p;
  write_byte(p.w.get());
  sel->register_fd(p.r.get(), Events::read, nullptr);
  EXPECT_EQ(sel->select(Duration::zero()).size(), 1u);
  sel->unregister(p.r.get());
  EXPECT_FALSE(sel->is_registered(p.r.get()));
  EXPECT_TRUE(sel->select(Duration::zero()).empty());

  int tag = 0;
  sel->register_fd(p.r.get(), Events::read, &tag);
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].data, &tag);
}

TEST_P(SelectorTest, UnregisterKeepsOthersIntact) {
  // Poll swaps the last registration into the hole: the moved one must keep its fd, interest and data.
  std::vector<Pipe> pipes(5);
  int tags[5];
  for (int i = 0; i < 5; ++i) {
    sel->register_fd(pipes[i].r.get(), Events::read, &tags[i]);
    write_byte(pipes[i].w.get());
  }
  sel->unregister(pipes[1].r.get());
  sel->unregister(pipes[0].r.get());
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 3u);
  for (int i = 2; i < 5; ++i) {
    const SelectorEvent* e = find_event(ready, pipes[i].r.get());
    ASSERT_NE(e, nullptr) << i;
    EXPECT_EQ(e->data, &tags[i]);
    EXPECT_EQ(e->events, Events::read);
  }
  sel->modify(pipes[4].r.get(), Events::write, &tags[0]);
  ready = sel->select(Duration::zero());
  EXPECT_EQ(ready.size(), 2u);
  EXPECT_EQ(find_event(ready, pipes[4].r.get()), nullptr);  // a read end never becomes writable
}

TEST_P(SelectorTest, ReadySpanSurvivesUnregisterUntilNextSelect) {
  // The loop dispatches from the span and its callbacks unregister fds meanwhile.
  Pipe p, q;
  write_byte(p.w.get());
  write_byte(q.w.get());
  sel->register_fd(p.r.get(), Events::read, &p);
  sel->register_fd(q.r.get(), Events::read, &q);
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 2u);
  sel->unregister(p.r.get());
  sel->unregister(q.r.get());
  EXPECT_NE(find_event(ready, p.r.get()), nullptr);
  EXPECT_EQ(find_event(ready, q.r.get())->data, &q);
}

TEST_P(SelectorTest, RegisteringTwiceIsEEXISTAndKeepsTheFirst) {
  Pipe p;
  int first = 1, second = 2;
  sel->register_fd(p.r.get(), Events::read, &first);
  expect_errno([&] { sel->register_fd(p.r.get(), Events::write, &second); }, EEXIST);
  write_byte(p.w.get());
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].data, &first);
  EXPECT_EQ(ready[0].events, Events::read);
}

TEST_P(SelectorTest, UnknownFdIsENOENT) {
  Pipe p;
  expect_errno([&] { sel->unregister(p.r.get()); }, ENOENT);
  expect_errno([&] { sel->modify(p.r.get(), Events::read, nullptr); }, ENOENT);
  expect_errno([&] { sel->unregister(-1); }, ENOENT);
  expect_errno([&] { sel->unregister(1 << 30); }, ENOENT);
  EXPECT_FALSE(sel->is_registered(-1));
  EXPECT_FALSE(sel->is_registered(1 << 30));
}

TEST_P(SelectorTest, NoEventsIsInvalidArgument) {
  Pipe p;
  EXPECT_THROW(sel->register_fd(p.r.get(), Events::none, nullptr), std::invalid_argument);
  EXPECT_FALSE(sel->is_registered(p.r.get()));
  EXPECT_THROW(sel->register_fd(p.r.get(), Events(8), nullptr), std::invalid_argument);
  sel->register_fd(p.r.get(), Events::read, nullptr);
  EXPECT_THROW(sel->modify(p.r.get(), Events::none, nullptr), std::invalid_argument);
  EXPECT_TRUE(sel->is_registered(p.r.get()));
}

TEST_P(SelectorTest, BadFdIsEBADF) {
  expect_errno([&] { sel->register_fd(-1, Events::read, nullptr); }, EBADF);
  int closed;
  {
    Pipe p;
    closed = p.r.get();
  }
  expect_errno([&] { sel->register_fd(closed, Events::read, nullptr); }, EBADF);
  EXPECT_FALSE(sel->is_registered(closed));
  EXPECT_FALSE(sel->is_registered(-1));
}

TEST_P(SelectorTest, FdClosedWhileRegistered) {
  Pipe p;
  int tag = 0;
  int fd = p.r.get();
  sel->register_fd(fd, Events::read, &tag);
  p.r.reset();  // closed behind the selector's back

  auto ready = sel->select(Duration::zero());
  if (const SelectorEvent* e = find_event(ready, fd)) {
    // poll's POLLNVAL: reported as the registered interest, so the owner tries and meets EBADF.
    EXPECT_EQ(e->events, Events::read);
    EXPECT_EQ(e->data, &tag);
    char c;
    EXPECT_EQ(::read(fd, &c, 1), -1);
    EXPECT_EQ(errno, EBADF);
  }
  if (is_poll()) {
    EXPECT_NE(find_event(ready, fd), nullptr);
  } else if (sel->name() == "uring") {
    // The poll was submitted by this select, after the close: it failed with EBADF, reported as for poll.
    EXPECT_NE(find_event(ready, fd), nullptr);
  } else {
    EXPECT_TRUE(ready.empty());  // epoll forgot the file when it closed
  }

  EXPECT_NO_THROW(sel->unregister(fd));
  EXPECT_FALSE(sel->is_registered(fd));
  EXPECT_TRUE(sel->select(Duration::zero()).empty());

  // The number comes back with the next file: it registers as new.
  Pipe q;
  ASSERT_EQ(q.r.get(), fd);
  write_byte(q.w.get());
  sel->register_fd(q.r.get(), Events::read, nullptr);
  EXPECT_EQ(sel->select(Duration::zero()).size(), 1u);
}

TEST_P(SelectorTest, FdClosedWhileRegisteredButKeptOpenByDup) {
  // epoll's quirk: the registration belongs to the open file, which a dup() keeps alive under the old number.
  Pipe p;
  int fd = p.r.get();
  Fd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  ASSERT_GE(dup.get(), 0);
  sel->register_fd(fd, Events::read, nullptr);
  p.r.reset();
  EXPECT_NO_THROW(sel->unregister(fd));
  write_byte(p.w.get());
  // Whatever the kernel still reports under the old number, nobody registered it any more.
  EXPECT_EQ(find_event(sel->select(Duration::zero()), fd), nullptr);
  // The same file back under the same number registers and is reported once.
  ASSERT_EQ(::dup2(dup.get(), fd), fd);
  Fd back(fd);
  int tag = 0;
  sel->register_fd(fd, Events::read, &tag);
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].data, &tag);
}

TEST_P(SelectorTest, ZeroTimeoutReturnsNothingWhenNothingIsReady) {
  Pipe p;
  sel->register_fd(p.r.get(), Events::read, nullptr);
  EXPECT_TRUE(sel->select(Duration::zero()).empty());
  EXPECT_TRUE(sel->select(Duration{-5}).empty());  // a deadline already past polls too
}

TEST_P(SelectorTest, FiniteTimeoutWaitsAtLeastThatLong) {
  absorb_ring_teardown_interrupts();
  Pipe p;
  sel->register_fd(p.r.get(), Events::read, nullptr);
  // 1.5 ms also checks the millisecond path rounds up, never down (which would return early and make the loop spin).
  // Early returns are allowed, as the contract allows EINTR: when io_uring selectors were closed on this thread just
  // before (the previous tests, when the binary runs them all in one process), the kernel's teardown of each ring
  // interrupts a blocking wait once. A timeout rounded down returns early every time.
  for (Duration timeout : {Duration(1500us), Duration(20ms)}) {
    Duration longest{0};
    for (int attempt = 0; attempt < 10 && longest < timeout; ++attempt) {
      auto start = std::chrono::steady_clock::now();
      auto ready = sel->select(timeout);
      longest = std::max<Duration>(longest, std::chrono::steady_clock::now() - start);
      EXPECT_TRUE(ready.empty());
    }
    EXPECT_GE(longest, timeout);
  }
}

TEST_P(SelectorTest, ForeverIsWokenByAWriteFromAnotherThread) {
  absorb_ring_teardown_interrupts();
  Pipe p;
  int tag = 0;
  sel->register_fd(p.r.get(), Events::read, &tag);
  pid_t self = static_cast<pid_t>(::syscall(SYS_gettid));
  std::thread writer([&] {
    wait_until_blocked(self);
    write_byte(p.w.get());
  });
  auto ready = sel->select(Selector::forever);
  // An early empty return is EINTR's (the contract allows it): an io_uring ring closed earlier in this process
  // interrupts a wait once as its teardown ends. A select that missed the write would block here for ever instead.
  for (int retry = 0; retry < 10 && ready.empty(); ++retry) ready = sel->select(Selector::forever);
  writer.join();
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].data, &tag);
}

void noop_handler(int) {}

TEST_P(SelectorTest, SignalReturnsEarlyWithNothing) {
  struct sigaction sa{}, old{};
  sa.sa_handler = noop_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the wait must see EINTR
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);

  Pipe p;
  sel->register_fd(p.r.get(), Events::read, nullptr);
  pid_t self_tid = static_cast<pid_t>(::syscall(SYS_gettid));
  pthread_t self = ::pthread_self();
  std::atomic<bool> returned{false};
  std::thread killer([&] {
    // Until the select returns, wait for it to block and interrupt it; repeating covers a signal that landed
    // just before the wait began (its handler ran, then the wait blocked anyway).
    while (!returned.load()) {
      wait_until_blocked(self_tid);
      if (returned.load()) break;
      ::pthread_kill(self, SIGUSR1);
      std::this_thread::yield();
    }
  });
  auto ready = sel->select(Selector::forever);
  returned.store(true);
  killer.join();
  EXPECT_TRUE(ready.empty());
  ::sigaction(SIGUSR1, &old, nullptr);
}

TEST_P(SelectorTest, HugeFdNumbers) {
  FdLimit limit(500001);
  ASSERT_GT(limit.limit(), 1024u);
  int huge = static_cast<int>(std::min<rlim_t>(500000, limit.limit() - 1));
  Pipe p;
  ASSERT_EQ(::dup2(p.r.get(), huge), huge) << std::strerror(errno);
  Fd big(huge);
  int tag = 0;
  sel->register_fd(huge, Events::read, &tag);
  EXPECT_TRUE(sel->is_registered(huge));
  expect_errno([&] { sel->register_fd(huge, Events::read, nullptr); }, EEXIST);
  EXPECT_TRUE(sel->select(Duration::zero()).empty());
  write_byte(p.w.get());
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].fd, huge);
  EXPECT_EQ(ready[0].data, &tag);
  sel->modify(huge, Events::write, &tag);
  EXPECT_TRUE(sel->select(Duration::zero()).empty());
  sel->unregister(huge);
  EXPECT_FALSE(sel->is_registered(huge));
  expect_errno([&] { sel->unregister(huge); }, ENOENT);
  RecordProperty("huge_fd", huge);
}

TEST_P(SelectorTest, ManyReadyFdsComeBackInOneSelect) {
  FdLimit limit(4200);
  std::size_t n = std::min<std::size_t>(2000, (limit.limit() - 100) / 2);
  ASSERT_GE(n, 400u);  // several times the backends' initial batch
  std::vector<Pipe> pipes(n);
  std::vector<int> tags(n);
  for (std::size_t i = 0; i < n; ++i) {
    tags[i] = static_cast<int>(i);
    sel->register_fd(pipes[i].r.get(), Events::read, &tags[i]);
    write_byte(pipes[i].w.get());
  }
  for (int round = 0; round < 2; ++round) {  // the second time the grown buffer holds them at once
    auto ready = sel->select(Duration::zero());
    ASSERT_EQ(ready.size(), n) << "round " << round;
    std::set<int> seen;
    for (const auto& e : ready) {
      EXPECT_TRUE(seen.insert(e.fd).second) << "fd " << e.fd << " reported twice";
      int i = *static_cast<int*>(e.data);
      EXPECT_EQ(pipes[std::size_t(i)].r.get(), e.fd);
      EXPECT_EQ(e.events, Events::read);
    }
  }
  for (auto& p : pipes) sel->unregister(p.r.get());
}

TEST_P(SelectorTest, SteadyStateSelectAllocatesNothing) {
  std::vector<Pipe> pipes(300);  // more than epoll's first batch: the first select grows its buffer
  for (auto& p : pipes) {
    sel->register_fd(p.r.get(), Events::read, nullptr);
    write_byte(p.w.get());
  }
  ASSERT_EQ(sel->select(Duration::zero()).size(), pipes.size());
  allocations = 0;
  counting = true;
  ::operator delete(::operator new(16));  // the counter itself works (a direct call cannot be elided)
  counting = false;
  ASSERT_EQ(allocations.load(), 1);
  allocations = 0;
  counting = true;
  std::size_t total = 0;
  for (int i = 0; i < 10; ++i) total += sel->select(Duration::zero()).size();
  sel->modify(pipes[0].r.get(), Events::read_write, nullptr);
  total += sel->select(1us).size();
  counting = false;
  EXPECT_EQ(allocations.load(), 0);
  EXPECT_EQ(total, 11 * pipes.size());
}

TEST_P(SelectorTest, PeerHangUpIsReported) {
  SocketPair s;
  sel->register_fd(s.a.get(), Events::read, nullptr);
  s.b.reset();
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].events, Events::read);
  char c;
  EXPECT_EQ(::read(s.a.get(), &c, 1), 0);  // end of file

  Pipe p;
  sel->register_fd(p.r.get(), Events::read, nullptr);
  p.w.reset();
  ready = sel->select(Duration::zero());
  const SelectorEvent* e = find_event(ready, p.r.get());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->events, Events::read);
}

TEST_P(SelectorTest, ErrorIsReportedAsTheRegisteredInterest) {
  // A full pipe is not writable; once its reader is gone the kernel reports an error (EPOLLERR/POLLERR), which
  // reaches the owner as "writable" so that its write meets EPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  Pipe p;
  char chunk[4096] = {};
  while (::write(p.w.get(), chunk, sizeof chunk) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  sel->register_fd(p.w.get(), Events::write, nullptr);
  EXPECT_TRUE(sel->select(Duration::zero()).empty());
  p.r.reset();
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].events, Events::write);
  EXPECT_EQ(::write(p.w.get(), chunk, 1), -1);
  EXPECT_EQ(errno, EPIPE);
}

TEST_P(SelectorTest, RegularFiles) {
  char path[] = "/tmp/tulipa_selector_XXXXXX";
  Fd file(::mkstemp(path));
  ASSERT_GE(file.get(), 0);
  ::unlink(path);
  if (watches_regular_files()) {
    sel->register_fd(file.get(), Events::read, nullptr);  // always ready, as the kernel says
    auto ready = sel->select(Duration::zero());
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].events, Events::read);
  } else {
    expect_errno([&] { sel->register_fd(file.get(), Events::read, nullptr); }, EPERM);
    EXPECT_FALSE(sel->is_registered(file.get()));
  }
}

TEST_P(SelectorTest, SelectWithNothingRegistered) {
  EXPECT_TRUE(sel->select(Duration::zero()).empty());
  EXPECT_TRUE(sel->select(1ms).empty());
}

// ---- not per backend

// Saves an environment variable and restores it at the end of the scope.
class SavedEnv {
 public:
  explicit SavedEnv(const char* name) : name_(name) {
    const char* v = std::getenv(name);
    had_ = v != nullptr;
    if (had_) value_ = v;
    ::unsetenv(name);
  }
  ~SavedEnv() {
    if (had_) {
      ::setenv(name_, value_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string value_;
};

TEST(DefaultSelector, HonoursTheEnvironment) {
  SavedEnv loop("TULIPA_LOOP"), selector("TULIPA_SELECTOR");
  EXPECT_EQ(make_default_selector()->name(), "epoll");
  ::setenv("TULIPA_SELECTOR", "poll", 1);  // the older name
  EXPECT_EQ(make_default_selector()->name(), "poll");
  ::setenv("TULIPA_SELECTOR", "epoll", 1);
  EXPECT_EQ(make_default_selector()->name(), "epoll");
  ::setenv("TULIPA_SELECTOR", "kqueue", 1);
  EXPECT_THROW(make_default_selector(), std::invalid_argument);
  ::unsetenv("TULIPA_SELECTOR");
  ::setenv("TULIPA_LOOP", "poll", 1);
  EXPECT_EQ(make_default_selector()->name(), "poll");
  ::setenv("TULIPA_LOOP", "epoll", 1);
  EXPECT_EQ(make_default_selector()->name(), "epoll");
  ::setenv("TULIPA_LOOP", "uring", 1);
  EXPECT_EQ(backend_from_environment(), LoopBackend::uring);
  std::string reason;
  auto made = make_selector(LoopBackend::automatic, &reason);
  if (reason.empty()) {
    EXPECT_EQ(made->name(), "uring");
  } else {
    EXPECT_EQ(made->name(), "epoll");  // refused here: the fallback
  }
  ::setenv("TULIPA_LOOP", "kqueue", 1);
  EXPECT_THROW(make_default_selector(), std::invalid_argument);
}

// ---- io_uring only

std::unique_ptr<UringSelector> try_uring(unsigned entries = 256) {
  try {
    return std::make_unique<UringSelector>(entries);
  } catch (const std::system_error&) {
    return nullptr;
  }
}

TEST(UringSelector, AsksForSingleIssuerAndDeferredTaskRun) {
  auto sel = try_uring();
  if (!sel) GTEST_SKIP() << "io_uring refused here";
  // This kernel (>= 6.1) has both; an older one gets COOP_TASKRUN or nothing, which the backend also handles.
  RecordProperty("setup_flags", std::to_string(sel->setup_flags()));
  EXPECT_NE(sel->setup_flags(), 0u);
}

TEST(UringSelector, CompletionQueueOverflowLosesNothing) {
  // A ring of 8 SQEs has a CQ of 32: 300 ready pipes complete 300 polls at once, most of them past the CQ.
  auto sel = try_uring(8);
  if (!sel) GTEST_SKIP() << "io_uring refused here";
  std::vector<Pipe> pipes(300);
  std::vector<int> tags(pipes.size());
  for (std::size_t i = 0; i < pipes.size(); ++i) {
    tags[i] = int(i);
    sel->register_fd(pipes[i].r.get(), Events::read, &tags[i]);
    write_byte(pipes[i].w.get());
  }
  for (int round = 0; round < 3; ++round) {
    std::set<int> seen;
    for (const auto& e : sel->select(Duration::zero())) {
      EXPECT_TRUE(seen.insert(*static_cast<int*>(e.data)).second);
      EXPECT_EQ(e.events, Events::read);
    }
    EXPECT_EQ(seen.size(), pipes.size()) << "round " << round;
  }
  EXPECT_GT(sel->overflow_flushes(), 0u);
}

TEST(UringSelector, AnotherThreadMayRunItLater) {
  // A single-issuer ring belongs to the thread that first submitted; a loop run on one thread, then on another,
  // gets a new ring with every fd armed again.
  auto sel = try_uring();
  if (!sel) GTEST_SKIP() << "io_uring refused here";
  Pipe p, q;
  int tag_p = 1, tag_q = 2;
  sel->register_fd(p.r.get(), Events::read, &tag_p);
  sel->register_fd(q.r.get(), Events::read, &tag_q);
  EXPECT_TRUE(sel->select(Duration::zero()).empty());
  write_byte(p.w.get());
  std::size_t seen_there = 0;
  std::thread other([&] {
    auto ready = sel->select(Duration::zero());
    seen_there = ready.size();
    if (!ready.empty()) {
      EXPECT_EQ(ready[0].data, &tag_p);
    }
  });
  other.join();
  EXPECT_EQ(seen_there, 1u);
  write_byte(q.w.get());
  EXPECT_EQ(sel->select(Duration::zero()).size(), 2u);  // back on this thread: both, level-triggered
}

TEST(UringSelector, ModifyAndUnregisterInOnePassCostNothingAndLoseNothing) {
  auto sel = try_uring();
  if (!sel) GTEST_SKIP() << "io_uring refused here";
  SocketPair s;
  int tag = 0;
  sel->register_fd(s.a.get(), Events::read, &tag);
  EXPECT_TRUE(sel->select(Duration::zero()).empty());  // a read poll is armed now
  sel->modify(s.a.get(), Events::write, &tag);         // writable at once
  sel->modify(s.a.get(), Events::read_write, &tag);
  auto ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].events, Events::write);
  sel->unregister(s.a.get());
  sel->register_fd(s.a.get(), Events::read, &tag);  // same fd again before the removal was submitted
  write_byte(s.b.get());
  ready = sel->select(Duration::zero());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].events, Events::read);
}

TEST(EpollSelector, ExposesItsFdCloseOnExec) {
  EpollSelector sel;
  ASSERT_GE(sel.fileno(), 0);
  EXPECT_TRUE(::fcntl(sel.fileno(), F_GETFD) & FD_CLOEXEC);
}

// After a burst: the fd table's pages above the fds in use go, and the event arrays grown for 600 ready fds shrink
// back once a give-back finds the last period quiet (the first one sees the busy select and keeps them).
TEST(EpollSelector, GivesABurstsTableAndEventArraysBack) {
  EpollSelector sel;
  EXPECT_FALSE(sel.over_reserve());
  std::vector<Fd> fds;
  for (int i = 0; i < 600; ++i) {
    fds.emplace_back(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));  // readable
    ASSERT_GE(fds.back().get(), 0);
    sel.register_fd(fds.back().get(), Events::read, nullptr);
  }
  EXPECT_EQ(sel.select(Duration::zero()).size(), 600u);  // the batch grew from 64 to hold them all
  for (Fd& fd : fds) sel.unregister(fd.get());
  fds.clear();
  EXPECT_TRUE(sel.over_reserve());
  EXPECT_GT(sel.give_back(), 0u);   // the table's pages above the top
  EXPECT_TRUE(sel.over_reserve());  // the arrays: busy in the last period
  EXPECT_GT(sel.give_back(), 0u);   // quiet since: back to the initial batch
  EXPECT_FALSE(sel.over_reserve());
  EXPECT_EQ(sel.give_back(), 0u);
  // And it works on, growing again when it must.
  std::vector<Fd> again;
  for (int i = 0; i < 100; ++i) {
    again.emplace_back(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
    sel.register_fd(again.back().get(), Events::read, nullptr);
  }
  EXPECT_EQ(sel.select(Duration::zero()).size(), 100u);
}

TEST(SelectorTimeout, MillisecondsRoundUp) {
  EXPECT_EQ(detail::to_epoll_ms(Selector::forever), -1);
  EXPECT_EQ(detail::to_epoll_ms(Duration::zero()), 0);
  EXPECT_EQ(detail::to_epoll_ms(Duration{-7}), 0);
  EXPECT_EQ(detail::to_epoll_ms(Duration{1}), 1);
  EXPECT_EQ(detail::to_epoll_ms(1ms), 1);
  EXPECT_EQ(detail::to_epoll_ms(1ms + Duration{1}), 2);
  EXPECT_EQ(detail::to_epoll_ms(std::chrono::hours(24 * 365)), INT_MAX);
  EXPECT_EQ(detail::to_epoll_ms(Duration::max()), INT_MAX);
}

TEST(SelectorTimeout, Timespec) {
  auto ts = detail::to_timespec(2s + 5ns);
  EXPECT_EQ(ts.tv_sec, 2);
  EXPECT_EQ(ts.tv_nsec, 5);
  ts = detail::to_timespec(Duration{-3});
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_EQ(ts.tv_nsec, 0);
}

}  // namespace
}  // namespace tulipa
