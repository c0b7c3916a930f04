// The event loop: ready-queue semantics, timers, cancellation, stop/close, readers and writers, signals, errors,
// debug mode, and memory given back after a burst. Timer logic runs on a VirtualClock, so nothing here sleeps for real
// (but the give-back tests' 1 ms passes).
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "loop/handle_node.hpp"
#include "loop/heap_trim.hpp"
#include "loop/timer_heap.hpp"
#include "selectors/uring_ops.hpp"
#include "tulipa/loop.hpp"

using namespace std::chrono_literals;
using tulipa::EventLoop;

namespace {

struct VirtualLoop {
  tulipa::VirtualClock clock{tulipa::TimePoint{} + 1h, /*auto_advance=*/true};
  EventLoop loop{make_options()};
  tulipa::LoopOptions make_options() {
    tulipa::LoopOptions o;
    o.clock = &clock;
    return o;
  }
};

struct SocketPair {
  int fd[2];
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0); }
  ~SocketPair() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
};

TEST(Loop, CallSoonRunsInOrder) {
  EventLoop loop;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) loop.call_soon([&order, i] { order.push_back(i); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

// The seed's rule: an iteration runs exactly what was ready when it began; what a callback schedules waits for the
// next iteration.
TEST(Loop, CallbackScheduledDuringIterationRunsInNextOne) {
  EventLoop loop;
  std::vector<std::string> log;
  loop.call_soon([&] {
    log.push_back("a");
    loop.call_soon([&] { log.push_back("c"); });
  });
  loop.call_soon([&] { log.push_back("b"); });
  loop.run_once();
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(loop.ready_count(), 1u);
  loop.run_once();
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(Loop, SelfReschedulingCallbackCannotStarveTheLoop) {
  EventLoop loop;
  int spins = 0;
  std::function<void()> spin = [&] {
    ++spins;
    loop.call_soon([&] { spin(); });
  };
  loop.call_soon([&] { spin(); });
  for (int i = 0; i < 10; ++i) loop.run_once();
  EXPECT_EQ(spins, 10);
}

TEST(Loop, CancelledSoonHandleDoesNotRunAndDropsCaptures) {
  EventLoop loop;
  auto token = std::make_shared<int>(1);
  bool ran = false;
  tulipa::Handle h = loop.call_soon([&ran, token] { ran = true; });
  EXPECT_TRUE(h.pending());
  EXPECT_EQ(token.use_count(), 2);
  h.cancel();
  EXPECT_TRUE(h.cancelled());
  EXPECT_FALSE(h.pending());
  EXPECT_EQ(token.use_count(), 1);  // captures released at cancel time
  loop.run_once();
  EXPECT_FALSE(ran);
  h.cancel();  // idempotent
}

TEST(Loop, CancelAfterRunIsHarmlessEvenWhenTheSlotIsReused) {
  EventLoop loop;
  int a = 0, b = 0;
  tulipa::Handle ha = loop.call_soon([&] { ++a; });
  loop.run_once();
  EXPECT_FALSE(ha.pending());
  tulipa::Handle hb = loop.call_soon([&] { ++b; });  // very likely reuses ha's slot
  ha.cancel();                                       // stale: must not cancel hb
  EXPECT_TRUE(hb.pending());
  loop.run_once();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
}

TEST(Loop, TimersRunInDeadlineOrderAndEqualDeadlinesFifo) {
  VirtualLoop v;
  std::vector<int> order;
  auto t0 = v.loop.time();
  v.loop.call_at(t0 + 30ms, [&] { order.push_back(3); });
  v.loop.call_at(t0 + 10ms, [&] { order.push_back(1); });
  for (int i = 0; i < 5; ++i) v.loop.call_at(t0 + 20ms, [&order, i] { order.push_back(100 + i); });
  v.loop.call_at(t0 + 40ms, [&] { v.loop.stop(); });
  v.loop.run_forever();
  EXPECT_EQ(order, (std::vector<int>{1, 100, 101, 102, 103, 104, 3}));
  EXPECT_EQ(v.loop.time(), t0 + 40ms);
}

TEST(Loop, CallLaterIsRelativeToLoopTime) {
  VirtualLoop v;
  auto start = v.loop.time();
  tulipa::TimePoint fired{};
  tulipa::TimerHandle h = v.loop.call_later(5s, [&] {
    fired = v.loop.time();
    v.loop.stop();
  });
  EXPECT_EQ(h.when(), start + 5s);
  v.loop.run_forever();
  EXPECT_EQ(fired, start + 5s);
}

TEST(Loop, TimerNotDueDoesNotRunUntilClockAdvances) {
  tulipa::VirtualClock clock;  // manual: no auto advance
  tulipa::LoopOptions o;
  o.clock = &clock;
  EventLoop loop(std::move(o));
  int fired = 0;
  loop.call_later(10ms, [&] { ++fired; });
  loop.run_once();
  EXPECT_EQ(fired, 0);
  clock.advance(9ms);
  loop.run_once();
  EXPECT_EQ(fired, 0);
  clock.advance(1ms);
  loop.run_once();
  EXPECT_EQ(fired, 1);
}

TEST(Loop, CancelledTimersLeaveTheHeapAtOnce) {
  VirtualLoop v;
  std::vector<tulipa::TimerHandle> handles;
  for (int i = 0; i < 10000; ++i) handles.push_back(v.loop.call_later(1s + i * 1ms, [] {}));
  EXPECT_EQ(v.loop.timer_count(), 10000u);
  for (int i = 0; i < 10000; i += 2) handles[i].cancel();
  EXPECT_EQ(v.loop.timer_count(), 5000u);
  int ran = 0;
  v.loop.call_later(1s + 5ms, [&] { ++ran; });  // survives among the others
  for (int i = 1; i < 10000; i += 2) handles[i].cancel();
  EXPECT_EQ(v.loop.timer_count(), 1u);
  v.loop.call_later(2s, [&] { v.loop.stop(); });
  v.loop.run_forever();
  EXPECT_EQ(ran, 1);
}

TEST(Loop, CancelTimerFromAnotherTimerInTheSamePass) {
  VirtualLoop v;
  auto t = v.loop.time() + 1s;
  bool second_ran = false;
  tulipa::TimerHandle second;
  v.loop.call_at(t, [&] { second.cancel(); });
  second = v.loop.call_at(t, [&] { second_ran = true; });
  v.loop.call_at(t + 1ms, [&] { v.loop.stop(); });
  v.loop.run_forever();
  EXPECT_FALSE(second_ran);
}

// With the real clock: the loop sleeps until the deadline in one go (no early wake-up and spin).
TEST(Loop, SleepsUntilTheNextDeadlineInOnePass) {
  EventLoop loop;
  bool fired = false;
  auto deadline = loop.time() + 20ms;
  loop.call_at(deadline, [&] { fired = true; });
  loop.run_once();
  EXPECT_TRUE(fired);
  EXPECT_GE(loop.time(), deadline);
}

TEST(Loop, StopBeforeRunForeverRunsOnePassThenReturns) {
  EventLoop loop;
  int ran = 0;
  loop.call_soon([&] { ++ran; });
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(loop.is_running());
}

TEST(Loop, IsRunningAndRunningLoop) {
  EventLoop loop;
  EXPECT_FALSE(loop.is_running());
  EXPECT_EQ(tulipa::running_loop(), nullptr);
  EXPECT_THROW(tulipa::get_running_loop(), std::runtime_error);
  loop.call_soon([&] {
    EXPECT_TRUE(loop.is_running());
    EXPECT_EQ(&tulipa::get_running_loop(), &loop);
    EXPECT_THROW(loop.run_forever(), std::logic_error);  // no re-entry
    EventLoop other;
    EXPECT_THROW(other.run_forever(), std::logic_error);  // one running loop per thread
    loop.stop();
  });
  loop.run_forever();
  EXPECT_EQ(tulipa::running_loop(), nullptr);
}

TEST(Loop, CloseDropsPendingCallbacksAndRefusesWork) {
  EventLoop loop;
  auto token = std::make_shared<int>(0);
  bool ran = false;
  loop.call_soon([&ran, token] { ran = true; });
  loop.call_later(1s, [token] {});
  EXPECT_EQ(token.use_count(), 3);
  loop.close();
  EXPECT_TRUE(loop.is_closed());
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_FALSE(ran);
  EXPECT_THROW(loop.call_soon([] {}), std::logic_error);
  EXPECT_THROW(loop.call_later(1s, [] {}), std::logic_error);
  EXPECT_THROW(loop.call_soon_threadsafe([] {}), std::logic_error);
  EXPECT_THROW(loop.run_forever(), std::logic_error);
  loop.close();  // idempotent
}

TEST(Loop, CloseWhileRunningThrows) {
  EventLoop loop;
  loop.call_soon([&] {
    EXPECT_THROW(loop.close(), std::logic_error);
    loop.stop();
  });
  loop.run_forever();
}

TEST(Loop, ExceptionInCallbackGoesToHandlerAndLoopGoesOn) {
  EventLoop loop;
  std::vector<std::string> seen;
  int line = 0;
  loop.set_exception_handler([&](EventLoop& l, const tulipa::ErrorContext& ctx) {
    EXPECT_EQ(&l, &loop);
    try {
      std::rethrow_exception(ctx.exception);
    } catch (const std::runtime_error& e) {
      seen.push_back(ctx.message + ": " + e.what());
    }
    EXPECT_EQ(ctx.scheduled_at.line(), static_cast<unsigned>(line));
  });
  bool after = false;
  line = __LINE__ + 1;
  loop.call_soon([] { throw std::runtime_error("boom"); });
  loop.call_soon([&] { after = true; });
  loop.run_once();
  EXPECT_TRUE(after);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], "Exception in callback: boom");
}

TEST(Loop, DefaultExceptionHandlerLogsAndAThrowingHandlerIsContained) {
  EventLoop loop;
  std::vector<std::string> lines;
  loop.set_log_handler([&](std::string_view l) { lines.emplace_back(l); });
  loop.call_soon([] { throw std::runtime_error("first"); });
  loop.run_once();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("first"), std::string::npos);
  EXPECT_NE(lines[0].find("loop_test.cpp"), std::string::npos);  // where it was scheduled

  loop.set_exception_handler([](EventLoop&, const tulipa::ErrorContext&) { throw std::logic_error("handler broke"); });
  loop.call_soon([] { throw std::runtime_error("second"); });
  loop.run_once();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[1].find("handler broke"), std::string::npos);
  EXPECT_NE(lines[2].find("second"), std::string::npos);

  loop.set_exception_handler(nullptr);  // back to default
  EXPECT_FALSE(loop.get_exception_handler());
}

TEST(Loop, DebugModeReportsSlowCallbacksWithWhereTheyWereScheduled) {
  EventLoop loop;
  loop.set_debug(true);
  loop.set_slow_callback_duration(1ms);
  std::vector<std::string> lines;
  loop.set_log_handler([&](std::string_view l) { lines.emplace_back(l); });
  loop.call_soon([] {
    auto end = std::chrono::steady_clock::now() + 5ms;
    while (std::chrono::steady_clock::now() < end) {
    }
  });
  loop.call_soon([] {});  // fast: not reported
  loop.run_once();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("Executing callback scheduled at"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("loop_test.cpp"), std::string::npos);
  EXPECT_NE(lines[0].find("seconds"), std::string::npos);

  loop.set_debug(false);
  lines.clear();
  loop.call_soon([] {
    auto end = std::chrono::steady_clock::now() + 5ms;
    while (std::chrono::steady_clock::now() < end) {
    }
  });
  loop.run_once();
  EXPECT_TRUE(lines.empty());
}

TEST(Loop, DebugModeFromEnvironment) {
  ::setenv("TULIPA_DEBUG", "1", 1);
  EventLoop on;
  ::setenv("TULIPA_DEBUG", "0", 1);
  EventLoop off;
  ::unsetenv("TULIPA_DEBUG");
  EXPECT_TRUE(on.get_debug());
  EXPECT_FALSE(off.get_debug());
  EXPECT_EQ(on.slow_callback_duration(), 100ms);
}

TEST(Loop, ReaderAndWriterCallbacks) {
  EventLoop loop;
  SocketPair sp;
  std::string got;
  loop.add_reader(sp.fd[0], [&] {
    char buf[64];
    ssize_t n = ::read(sp.fd[0], buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (got == "hello") loop.stop();
  });
  int writes = 0;
  loop.add_writer(sp.fd[1], [&] {
    ++writes;
    ASSERT_EQ(::write(sp.fd[1], "hello", 5), 5);
    EXPECT_TRUE(loop.remove_writer(sp.fd[1]));
  });
  loop.run_forever();
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(writes, 1);
  EXPECT_TRUE(loop.remove_reader(sp.fd[0]));
  EXPECT_FALSE(loop.remove_reader(sp.fd[0]));
  EXPECT_FALSE(loop.remove_writer(sp.fd[1]));
  EXPECT_FALSE(loop.selector().is_registered(sp.fd[0]));
}

TEST(Loop, AddReaderReplacesAndReaderCanRemoveItself) {
  EventLoop loop;
  SocketPair sp;
  int first = 0, second = 0;
  loop.add_reader(sp.fd[0], [&] { ++first; });
  loop.add_reader(sp.fd[0], [&] {
    ++second;
    loop.remove_reader(sp.fd[0]);  // destroys this very callback's slot: must be safe
    loop.stop();
  });
  ASSERT_EQ(::write(sp.fd[1], "x", 1), 1);
  loop.run_forever();
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
}

TEST(Loop, ReaderUnregisteringAnotherFdInTheSameBatchStopsItsDelivery) {
  EventLoop loop;
  SocketPair a, b;
  int a_runs = 0, b_runs = 0;
  // Whichever runs first removes the other: exactly one of them runs in the pass.
  loop.add_reader(a.fd[0], [&] {
    ++a_runs;
    loop.remove_reader(b.fd[0]);
    loop.remove_reader(a.fd[0]);
  });
  loop.add_reader(b.fd[0], [&] {
    ++b_runs;
    loop.remove_reader(a.fd[0]);
    loop.remove_reader(b.fd[0]);
  });
  ASSERT_EQ(::write(a.fd[1], "x", 1), 1);
  ASSERT_EQ(::write(b.fd[1], "x", 1), 1);
  loop.run_once();
  EXPECT_EQ(a_runs + b_runs, 1);
}

TEST(Loop, ExceptionInReaderGoesToHandlerWithFd) {
  EventLoop loop;
  SocketPair sp;
  int fd_seen = -2;
  loop.set_exception_handler([&](EventLoop&, const tulipa::ErrorContext& ctx) {
    fd_seen = ctx.fd;
    loop.stop();
  });
  loop.add_reader(sp.fd[0], [] { throw std::runtime_error("reader failed"); });
  ASSERT_EQ(::write(sp.fd[1], "x", 1), 1);
  loop.run_forever();
  EXPECT_EQ(fd_seen, sp.fd[0]);
  loop.remove_reader(sp.fd[0]);
}

TEST(Loop, WatcherAndReaderCannotShareAnFd) {
  struct Nop final : tulipa::IoWatcher {
    void on_io(tulipa::Events) override {}
  } nop;
  EventLoop loop;
  SocketPair sp;
  loop.watch(sp.fd[0], tulipa::Events::read, &nop);
  EXPECT_THROW(loop.add_reader(sp.fd[0], [] {}), std::logic_error);
  EXPECT_THROW(loop.watch(sp.fd[0], tulipa::Events::read, &nop), std::system_error);
  loop.update_watch(sp.fd[0], tulipa::Events::none);  // known, not polled
  EXPECT_FALSE(loop.selector().is_registered(sp.fd[0]));
  loop.update_watch(sp.fd[0], tulipa::Events::read_write);
  EXPECT_TRUE(loop.selector().is_registered(sp.fd[0]));
  loop.unwatch(sp.fd[0]);
  EXPECT_FALSE(loop.selector().is_registered(sp.fd[0]));
  EXPECT_THROW(loop.update_watch(sp.fd[0], tulipa::Events::read), std::system_error);
}

// 400 fds span several pages of the loop's fd table. The first reader adds all the others from inside its own
// callback, so the table grows while that fd's entry and reader state are in use.
TEST(Loop, ReadersOnManyFdsAcrossTablePagesAddedFromACallback) {
  EventLoop loop;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  for (int i = 0; i < 200; ++i) pairs.push_back(std::make_unique<SocketPair>());
  ASSERT_GT(pairs.back()->fd[0], 256);  // past the first page
  std::vector<int> fired(pairs.size(), 0);
  std::size_t left = pairs.size() - 1;
  auto drain = [](int fd) {
    char buf[8];
    EXPECT_EQ(::read(fd, buf, sizeof buf), 1);
  };
  for (auto& p : pairs) ASSERT_EQ(::write(p->fd[1], "x", 1), 1);
  loop.add_reader(pairs[0]->fd[0], [&] {
    drain(pairs[0]->fd[0]);
    ++fired[0];
    for (std::size_t i = 1; i < pairs.size(); ++i) {
      loop.add_reader(pairs[i]->fd[0], [&, i] {
        drain(pairs[i]->fd[0]);
        ++fired[i];
        EXPECT_TRUE(loop.remove_reader(pairs[i]->fd[0]));
        if (--left == 0) loop.stop();
      });
    }
    // Still this fd's own entry: a writer joins the reader, and both go away while the reader runs.
    loop.add_writer(pairs[0]->fd[0], [] {});
    EXPECT_TRUE(loop.remove_writer(pairs[0]->fd[0]));
    EXPECT_TRUE(loop.remove_reader(pairs[0]->fd[0]));
  });
  loop.run_forever();
  EXPECT_EQ(fired, std::vector<int>(pairs.size(), 1));
  for (auto& p : pairs) EXPECT_FALSE(loop.selector().is_registered(p->fd[0]));
}

// The loop owns add_reader/add_writer's state: removing, replacing and closing release the callbacks' captures.
TEST(Loop, ReaderAndWriterCapturesAreReleased) {
  auto token = std::make_shared<int>(0);
  EventLoop loop;
  SocketPair a, b;
  loop.add_reader(a.fd[0], [token] {});
  loop.add_writer(a.fd[0], [token] {});
  loop.add_reader(b.fd[0], [token] {});
  EXPECT_EQ(token.use_count(), 4);
  loop.add_reader(b.fd[0], [] {});  // replaced
  EXPECT_EQ(token.use_count(), 3);
  EXPECT_TRUE(loop.remove_writer(a.fd[0]));
  EXPECT_EQ(token.use_count(), 2);
  loop.close();  // a's reader and b's reader still there
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_FALSE(loop.selector().is_registered(a.fd[0]));
}

TEST(Loop, SignalHandlerRunsOnTheLoop) {
  EventLoop loop;
  int got = 0;
  loop.add_signal_handler(SIGUSR1, [&] {
    ++got;
    loop.stop();
  });
  loop.call_soon([] { ::raise(SIGUSR1); });
  loop.run_forever();
  EXPECT_EQ(got, 1);
  EXPECT_TRUE(loop.remove_signal_handler(SIGUSR1));
  EXPECT_FALSE(loop.remove_signal_handler(SIGUSR1));
  struct sigaction sa{};
  ::sigaction(SIGUSR1, nullptr, &sa);
  EXPECT_EQ(sa.sa_handler, SIG_DFL);
}

// On io_uring the signal pipe is read through the ring: one read waits in the kernel (a read that returned at once,
// EAGAIN on the non-blocking pipe say, would complete in every pass), delivers the signal, and waits again.
TEST(Loop, SignalsArriveThroughTheRingOnIoUring) {
  tulipa::LoopOptions o;
  o.backend = tulipa::LoopBackend::uring;
  EventLoop loop(std::move(o));
  tulipa::detail::UringOps* ops = tulipa::detail::uring_ops(loop);
  if (ops == nullptr) GTEST_SKIP() << "io_uring refused here";
  int got = 0;
  loop.add_signal_handler(SIGUSR1, [&] { ++got; });
  auto quiet_pass = [&] {
    loop.call_soon([] {});
    loop.run_once();
    return ops->delivered();
  };
  quiet_pass();  // submits the read
  EXPECT_EQ(quiet_pass(), 0u);
  EXPECT_EQ(quiet_pass(), 0u);
  ::raise(SIGUSR1);
  while (got == 0) loop.run_once();
  EXPECT_EQ(got, 1);
  EXPECT_EQ(ops->delivered(), 1u);  // the pass that ran the handler: the read's completion, not a poll's event
  quiet_pass();                     // the read armed again
  EXPECT_EQ(quiet_pass(), 0u);
  ::raise(SIGUSR1);
  while (got == 1) loop.run_once();
  EXPECT_TRUE(loop.remove_signal_handler(SIGUSR1));
}

TEST(Loop, SignalHandlerRejectsBadSignalsAndASecondLoop) {
  EventLoop loop, other;
  EXPECT_THROW(loop.add_signal_handler(SIGKILL, [] {}), std::invalid_argument);
  EXPECT_THROW(loop.add_signal_handler(0, [] {}), std::invalid_argument);
  EXPECT_THROW(loop.add_signal_handler(100000, [] {}), std::invalid_argument);
  loop.add_signal_handler(SIGUSR2, [] {});
  EXPECT_THROW(other.add_signal_handler(SIGUSR2, [] {}), std::logic_error);
  loop.remove_signal_handler(SIGUSR2);
  other.add_signal_handler(SIGUSR2, [] {});
  other.close();  // removes it
  struct sigaction sa{};
  ::sigaction(SIGUSR2, nullptr, &sa);
  EXPECT_EQ(sa.sa_handler, SIG_DFL);
}

// SIGTERM stops a server cleanly: the pattern every example uses.
TEST(Loop, SigtermStopsRunForever) {
  EventLoop loop;
  bool by_signal = false;
  loop.add_signal_handler(SIGTERM, [&] {
    by_signal = true;
    loop.stop();
  });
  loop.call_later(1ms, [] { ::kill(::getpid(), SIGTERM); });
  loop.run_forever();
  EXPECT_TRUE(by_signal);
  EXPECT_TRUE(loop.remove_signal_handler(SIGTERM));
}

TEST(Loop, WorksWithEveryBackend) {
  for (auto make : {tulipa::make_epoll_selector, tulipa::make_poll_selector}) {
    tulipa::LoopOptions o;
    o.selector = make();
    EventLoop loop(std::move(o));
    SocketPair sp;
    int n = 0;
    loop.add_reader(sp.fd[0], [&] {
      char c;
      ASSERT_EQ(::read(sp.fd[0], &c, 1), 1);
      ++n;
      loop.stop();
    });
    loop.call_later(1ms, [&] { ASSERT_EQ(::write(sp.fd[1], "x", 1), 1); });
    loop.run_forever();
    EXPECT_EQ(n, 1) << loop.selector().name();
    loop.remove_reader(sp.fd[0]);
  }
}

}  // namespace

namespace {

struct Recorder final : tulipa::LoopExtension {
  explicit Recorder(EventLoop& l) : loop(&l) {}
  EventLoop* loop;
  std::vector<std::string>* log = nullptr;
  std::string name;
  void on_close(EventLoop& l) noexcept override {
    EXPECT_EQ(&l, loop);
    log->push_back("close " + name);
    l.call_soon([] {});  // scheduling still works during on_close; the callback is dropped
  }
  ~Recorder() override { log->push_back("destroy " + name); }
};
struct Other final : tulipa::LoopExtension {
  std::vector<std::string>* log = nullptr;
  void on_close(EventLoop&) noexcept override { log->push_back("close other"); }
  ~Other() override { log->push_back("destroy other"); }
};

TEST(LoopExtension, OnePerTypeToldOnCloseNewestFirstAndDestroyedWithTheLoop) {
  std::vector<std::string> log;
  {
    EventLoop loop;
    EXPECT_EQ(loop.find_extension<Recorder>(), nullptr);
    Recorder& r = loop.extension<Recorder>();
    r.log = &log;
    r.name = "recorder";
    EXPECT_EQ(&loop.extension<Recorder>(), &r);  // same object on every call
    EXPECT_EQ(loop.find_extension<Recorder>(), &r);
    loop.extension<Other>().log = &log;
    loop.close();
    EXPECT_EQ(log, (std::vector<std::string>{"close other", "close recorder"}));
    EXPECT_EQ(loop.ready_count(), 0u);
  }
  EXPECT_EQ(log, (std::vector<std::string>{"close other", "close recorder", "destroy other", "destroy recorder"}));
}

// --- memory that comes back: what a burst grew, the loop gives back beyond its reserves when it is about to sleep
// (with its heap trim, at most once a second per thread: each test runs in a thread of its own, whose first trim is
// due at once).

// Runs passes until the loop made a heap trim (it wants one: something exceeds a reserve). Each pass sleeps briefly
// (the trim is made before the loop sleeps); a watchdog timer ends the wait if the trim never comes.
void run_until_trimmed(EventLoop& loop) {
  const std::size_t trims = tulipa::detail::heap_trims();
  bool timed_out = false;
  tulipa::TimerHandle watchdog = loop.call_later(10s, [&] { timed_out = true; });
  tulipa::TimerHandle tick;
  while (tulipa::detail::heap_trims() == trims && !timed_out) {
    tick = loop.call_later(1ms, [] {});
    loop.run_once();
  }
  // The last tick may still be pending: a pass can end before its millisecond (io_uring's select returns on a
  // completion), and a pending timer is a callback the reserves count as scheduled.
  tick.cancel();
  watchdog.cancel();
  ASSERT_FALSE(timed_out);
}

template <class F>
void in_own_thread(F&& f) {
  std::thread t(std::forward<F>(f));
  t.join();
}

using Pool = tulipa::detail::HandlePool;

TEST(LoopReserves, ABurstOfCallbacksTimersAndFdsIsGivenBackDownToTheReserves) {
  in_own_thread([] {
    EventLoop loop;
    const EventLoop::Reserves start = loop.reserves();
    int ran = 0;
    for (int i = 0; i < 10000; ++i) loop.call_soon([&] { ++ran; });
    std::vector<tulipa::TimerHandle> timers;
    for (int i = 0; i < 10000; ++i) timers.push_back(loop.call_later(1h, [] {}));
    std::vector<int> fds;
    for (int i = 0; i < 600; ++i) {
      fds.push_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
      ASSERT_GE(fds.back(), 0);
      loop.add_reader(fds.back(), [] {});
    }
    const EventLoop::Reserves peak = loop.reserves();
    EXPECT_GE(peak.callback_nodes, 20000u);
    EXPECT_EQ(peak.callbacks_scheduled, 20000u);
    EXPECT_GE(peak.timer_slots, 10000u);
    EXPECT_GE(peak.fd_slots, 768u);  // fds up to about 610: three pages of 256
    loop.run_once();
    EXPECT_EQ(ran, 10000);
    for (auto& t : timers) t.cancel();
    for (int fd : fds) {
      loop.remove_reader(fd);
      ::close(fd);
    }
    run_until_trimmed(loop);
    const EventLoop::Reserves after = loop.reserves();
    EXPECT_EQ(after.callbacks_scheduled, 0u);
    EXPECT_LE(after.callback_nodes, Pool::reserve_nodes + Pool::chunk_size);
    EXPECT_GE(after.callback_nodes, Pool::reserve_nodes);  // the reserve stays
    EXPECT_LE(after.timer_slots, tulipa::detail::TimerHeap::reserve_entries);
    EXPECT_LE(after.fd_slots, std::max<std::size_t>(start.fd_slots, 512));  // the loop's own fds' page and the next
    // And the loop works on: a burst again grows the pool again.
    for (int i = 0; i < 5000; ++i) loop.call_soon([&] { ++ran; });
    loop.run_once();
    EXPECT_EQ(ran, 15000);
  });
}

// A Handle whose node's chunk was given back finds nothing; one whose chunk was made again at the same place does not
// match the new callbacks there (their generations start past the old ones); one whose node stayed in use still works.
TEST(LoopReserves, HandlesOutliveTheirGivenBackNodesHarmlessly) {
  in_own_thread([] {
    EventLoop loop;
    std::vector<tulipa::Handle> old;
    for (int i = 0; i < 10000; ++i) old.push_back(loop.call_soon([] {}));
    int fired = 0;
    tulipa::TimerHandle survivor = loop.call_later(1h, [&] { ++fired; });  // in the last chunk
    loop.run_once();
    run_until_trimmed(loop);
    EXPECT_LE(loop.reserves().callback_nodes, Pool::reserve_nodes + 2 * Pool::chunk_size);
    for (auto& h : old) {
      EXPECT_FALSE(h.pending());
      h.cancel();  // nothing to cancel
    }
    EXPECT_TRUE(survivor.pending());
    int ran = 0;
    for (int i = 0; i < 10000; ++i) loop.call_soon([&] { ++ran; });
    for (auto& h : old) {
      EXPECT_FALSE(h.pending());
      h.cancel();  // names a slot that serves a new callback now: must not cancel it
    }
    loop.run_once();
    EXPECT_EQ(ran, 10000);
    survivor.cancel();
    EXPECT_FALSE(survivor.pending());
    EXPECT_EQ(loop.timer_count(), 0u);
    EXPECT_EQ(fired, 0);
  });
}

// The pool gives back only chunks whose nodes are all free: one in use pins its chunk (the free nodes around it count
// in the reserve), and an attempt is not repeated until the pool changed (so an idle loop is not woken for it).
TEST(LoopReserves, APoolChunkWithANodeInUseStays) {
  Pool pool(nullptr);
  constexpr std::size_t node_bytes = sizeof(tulipa::detail::HandleNode);
  std::vector<tulipa::detail::HandleNode*> nodes;
  for (int i = 0; i < 16 * int(Pool::chunk_size); ++i) nodes.push_back(pool.acquire());
  // Keep one node of each of the 12 highest chunks (which chunk a node is in: its slot says).
  std::vector<tulipa::detail::HandleNode*> pinned;
  for (auto* n : nodes) {
    if (n->slot >= 4 * Pool::chunk_size && n->slot % Pool::chunk_size == 7) {
      n->state = tulipa::detail::NodeState::timer;
      pinned.push_back(n);
    } else {
      pool.release(n);
    }
  }
  ASSERT_EQ(pinned.size(), 12u);
  EXPECT_TRUE(pool.over_reserve());
  EXPECT_EQ(pool.give_back(), 4 * Pool::chunk_size * node_bytes);  // the 4 free chunks; the others' free nodes stay
  EXPECT_EQ(pool.capacity(), 12 * Pool::chunk_size);
  EXPECT_FALSE(pool.over_reserve());
  EXPECT_EQ(pool.give_back(), 0u);
  for (auto* n : pinned) EXPECT_EQ(pool.find(n->slot), n);  // still there
  for (auto* n : pinned) pool.release(n);
  EXPECT_TRUE(pool.over_reserve());
  EXPECT_EQ(pool.give_back(), 8 * Pool::chunk_size * node_bytes);
  EXPECT_EQ(pool.capacity(), Pool::reserve_nodes);
  EXPECT_FALSE(pool.over_reserve());
  EXPECT_EQ(pool.find(15 * Pool::chunk_size), nullptr);  // a given-back chunk's slot
  // The pool grows back into the places given back.
  std::vector<tulipa::detail::HandleNode*> again;
  for (int i = 0; i < 2000; ++i) again.push_back(pool.acquire());
  EXPECT_EQ(pool.capacity(), 2048u);
  for (auto* n : again) pool.release(n);
}

}  // namespace
