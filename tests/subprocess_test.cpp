// Subprocesses with coroutines: create_subprocess_exec/shell, Process (wait, communicate, signals), its pipes as
// StreamReader/StreamWriter, cancellation of wait() and communicate(), and many children at once. Real programs; every
// wait is on an event, a watchdog only turns a hang into a failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "subprocess/child_watcher.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/process.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/task.hpp"
#include "tulipa/timeout.hpp"

using namespace std::chrono_literals;
using tulipa::Bytes;
using tulipa::Coro;
using tulipa::EventLoop;
using tulipa::Process;
using tulipa::Stdio;
using tulipa::SubprocessOptions;

namespace {

bool no_children_left() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// A pidfd for any process (not only our children): it turns readable when the process ends.
int open_pidfd(int pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
// Whether the process behind `pidfd` ended within `limit` (a bound for a hang, not a timing threshold).
bool ended_within(int pidfd, std::chrono::milliseconds limit) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(limit.count())) == 1;
}

SubprocessOptions pipes(bool in, bool out, bool err) {
  SubprocessOptions o;
  if (in) o.std_in = Stdio::pipe();
  if (out) o.std_out = Stdio::pipe();
  if (err) o.std_err = Stdio::pipe();
  return o;
}

class SubprocessTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(no_children_left()); }
  void TearDown() override { EXPECT_TRUE(no_children_left()); }

  // Runs the loop until `pred` holds; the watchdog turns a hang into a failure.
  template <class Pred>
  void run_until(Pred pred) {
    bool timed_out = false;
    auto watchdog = loop.call_later(60s, [&] { timed_out = true; });
    while (!pred() && !timed_out) loop.run_once();
    watchdog.cancel();
    ASSERT_FALSE(timed_out) << "watchdog fired";
  }
  // Runs `c` as a task to completion and returns its result (rethrows its exception).
  template <class T>
  T run(Coro<T> c) {
    tulipa::Task<T> t = tulipa::create_task(loop, std::move(c));
    run_until([&] { return t.done(); });
    if (!t.done()) {
      t.cancel();
      run_until([&] { return t.done(); });
    }
    return t.take_result();
  }

  EventLoop loop;
};

TEST_F(SubprocessTest, CommunicateFeedsAllOfStdinAndReadsEverything) {
  const std::string input = pattern(1 << 20);
  auto [out, err, rc] = run([&]() -> Coro<std::tuple<std::string, std::string, int>> {
    Process p = co_await tulipa::create_subprocess_shell("cat; echo done >&2", pipes(true, true, true));
    EXPECT_GT(p.pid(), 0);
    EXPECT_FALSE(p.returncode());
    tulipa::CommunicateResult r = co_await p.communicate(input);
    co_return std::tuple{r.std_out.str(), r.std_err.str(), *p.returncode()};
  }());
  EXPECT_EQ(out.size(), input.size());
  EXPECT_TRUE(out == input);
  EXPECT_EQ(err, "done\n");
  EXPECT_EQ(rc, 0);
}

// The example at the top of process.hpp, as written there.
TEST_F(SubprocessTest, HeaderExample) {
  auto [out, rc] = run([]() -> Coro<std::pair<std::string, int>> {
    std::vector<std::string> argv{"sort"};
    tulipa::Process p = co_await tulipa::create_subprocess_exec(
        argv, {.std_in = tulipa::Stdio::pipe(), .std_out = tulipa::Stdio::pipe()});
    auto [out, err] = co_await p.communicate("b\na\n");
    EXPECT_TRUE(err.empty());
    co_return std::pair{out.str(), *p.returncode()};
  }());
  EXPECT_EQ(out, "a\nb\n");
  EXPECT_EQ(rc, 0);
}

// The child fills stderr before it writes a byte to stdout: communicate must read both at once, or the child would
// block on a full stderr pipe while we wait for stdout.
TEST_F(SubprocessTest, CommunicateReadsBothPipesAtOnce) {
  auto [out, err] = run([]() -> Coro<std::pair<std::size_t, std::size_t>> {
    Process p = co_await tulipa::create_subprocess_shell("head -c 1048576 /dev/zero >&2; head -c 1048577 /dev/zero",
                                                         pipes(false, true, true));
    tulipa::CommunicateResult r = co_await p.communicate();
    EXPECT_EQ(p.returncode(), 0);
    co_return std::pair{r.std_out.size(), r.std_err.size()};
  }());
  EXPECT_EQ(out, 1048577u);
  EXPECT_EQ(err, 1048576u);
}

// head writes 1 MiB; we read in small pieces while it writes (the reader pauses the pipe when it holds too much).
TEST_F(SubprocessTest, ReadWhileTheChildWritesMoreThanAPipeHolds) {
  auto [total, zeros, rc] = run([]() -> Coro<std::tuple<std::size_t, bool, int>> {
    std::vector<std::string> argv{"head", "-c", "1048576", "/dev/zero"};  // see process.hpp on g++ 12 and braces
    Process p = co_await tulipa::create_subprocess_exec(argv, pipes(false, true, false));
    std::size_t total = 0;
    bool zeros = true;
    for (;;) {
      Bytes b = co_await p.std_out()->read(10000);
      if (b.empty()) break;
      EXPECT_LE(b.size(), 10000u);
      for (std::byte x : b) zeros &= x == std::byte{0};
      total += b.size();
    }
    EXPECT_TRUE(p.std_out()->at_eof());
    int rc = co_await p.wait();
    co_return std::tuple{total, zeros, rc};
  }());
  EXPECT_EQ(total, 1048576u);
  EXPECT_TRUE(zeros);
  EXPECT_EQ(rc, 0);
}

// Nobody reads: the stdout stream stops reading the pipe once it holds more than twice its limit, so the child
// blocks (the loop stays idle instead of buffering the whole megabyte); reading then resumes it.
TEST_F(SubprocessTest, UnreadOutputIsBoundedByFlowControl) {
  std::optional<Process> p;
  tulipa::SubprocessOptions o = pipes(false, true, false);
  o.limit = 100000;
  p.emplace(tulipa::spawn_process(loop, {"head", "-c", "1048576", "/dev/zero"}, o));
  tulipa::StreamReader out = *p->std_out();
  EXPECT_EQ(out.limit(), 100000u);
  const std::size_t pause_above = 2 * out.limit();
  run_until([&] { return out.buffered() > pause_above; });
  for (int i = 0; i < 20; ++i) {  // more passes change nothing: the pipe is no longer read
    loop.call_soon([] {});
    loop.run_once();
  }
  // At most one read (64 KiB, the shared read buffer) beyond the mark.
  EXPECT_LE(out.buffered(), pause_above + 64 * 1024);
  EXPECT_FALSE(p->returncode());
  Bytes all = run([&]() -> Coro<Bytes> { co_return co_await out.read(); }());
  EXPECT_EQ(all.size(), 1048576u);
  EXPECT_EQ(run(p->wait()), 0);
}

TEST_F(SubprocessTest, ReadlineAndReadexactly) {
  run([]() -> Coro<void> {
    std::vector<std::string> argv{"printf", "a\\nbb\\n0123456789tail"};
    Process p = co_await tulipa::create_subprocess_exec(argv, pipes(false, true, false));
    // (Each result is taken out first: g++ 12 cannot keep a string literal's array across a co_await in one
    // expression.)
    std::string a = (co_await p.std_out()->readline()).str();
    std::string b = (co_await p.std_out()->readline()).str();
    std::string digits = (co_await p.std_out()->readexactly(10)).str();
    EXPECT_EQ(a, "a\n");
    EXPECT_EQ(b, "bb\n");
    EXPECT_EQ(digits, "0123456789");
    try {
      co_await p.std_out()->readexactly(10);  // only "tail" is left
      ADD_FAILURE() << "no IncompleteReadError";
    } catch (const tulipa::IncompleteReadError& e) {
      EXPECT_EQ(e.partial().str(), "tail");
      EXPECT_EQ(e.expected(), 10u);
    }
    std::string tail = (co_await p.std_out()->readline()).str();
    std::string end = (co_await p.std_out()->readline()).str();
    EXPECT_EQ(tail, "");
    EXPECT_EQ(end, "");
    EXPECT_EQ(co_await p.wait(), 0);
  }());
}

TEST_F(SubprocessTest, ExitCodesAndSignals) {
  run([]() -> Coro<void> {
    Process a = co_await tulipa::create_subprocess_shell("exit 42");
    const std::vector<std::string> sleeper{"sleep", "1000"};
    Process k = co_await tulipa::create_subprocess_exec(sleeper);
    Process t = co_await tulipa::create_subprocess_exec(sleeper);
    k.kill();
    t.terminate();
    EXPECT_EQ(co_await a.wait(), 42);
    EXPECT_EQ(co_await k.wait(), -SIGKILL);
    EXPECT_EQ(co_await t.wait(), -SIGTERM);
    EXPECT_EQ(co_await t.wait(), -SIGTERM);  // again: the same answer at once
    t.kill();                                // exited: nothing happens
    EXPECT_EQ(a.returncode(), 42);
  }());
}

TEST_F(SubprocessTest, MissingProgramThrowsEnoent) {
  try {
    run([]() -> Coro<void> {
      std::vector<std::string> argv{"tulipa-no-such-program"};
      Process p = co_await tulipa::create_subprocess_exec(argv);
    }());
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("tulipa-no-such-program"), std::string::npos);
  }
}

// Cancelling wait() stops only that wait: the child runs on, and can still be killed and waited for.
TEST_F(SubprocessTest, CancelWait) {
  std::optional<Process> p;
  p.emplace(tulipa::spawn_process(loop, {"sleep", "1000"}));
  auto waiting = tulipa::create_task(loop, p->wait());
  loop.run_once();  // the task starts and parks on the exit
  ASSERT_FALSE(waiting.done());
  waiting.cancel();
  run_until([&] { return waiting.done(); });
  EXPECT_TRUE(waiting.cancelled());
  EXPECT_FALSE(p->returncode());
  p->kill();
  EXPECT_EQ(run(p->wait()), -SIGKILL);
}

// Cancelling communicate() loses nothing: what the child wrote so far is still there for the next communicate.
TEST_F(SubprocessTest, CancelCommunicate) {
  std::optional<Process> p;
  run([&]() -> Coro<void> {
    p.emplace(co_await tulipa::create_subprocess_shell("echo partial; cat >/dev/null; exec sleep 1000",
                                                       pipes(true, true, false)));
  }());
  auto comm = tulipa::create_task(loop, p->communicate("input that cat swallows"));
  run_until([&] { return p->std_out()->buffered() == 8; });  // "partial\n" arrived; communicate still waits
  ASSERT_FALSE(comm.done());
  comm.cancel();
  run_until([&] { return comm.done(); });
  EXPECT_TRUE(comm.cancelled());
  p->kill();
  tulipa::CommunicateResult r = run(p->communicate());
  EXPECT_EQ(r.std_out.str(), "partial\n");
  EXPECT_EQ(p->returncode(), -SIGKILL);
}

// Flow control on stdin: write() buffers, drain() waits until the child has taken enough.
TEST_F(SubprocessTest, WriteDrainWhileReading) {
  const std::string input = pattern(1 << 20);
  std::string out = run([&]() -> Coro<std::string> {
    std::vector<std::string> argv{"cat"};
    Process p = co_await tulipa::create_subprocess_exec(argv, pipes(true, true, false));
    auto reader =
        tulipa::create_task([](tulipa::StreamReader r) -> Coro<Bytes> { co_return co_await r.read(); }(*p.std_out()));
    for (std::size_t off = 0; off < input.size(); off += 100000) {
      p.std_in()->write(std::string_view(input).substr(off, 100000));
      co_await p.std_in()->drain();
      EXPECT_LE(p.std_in()->transport()->get_write_buffer_size(), 64u * 1024);
    }
    p.std_in()->close();
    EXPECT_THROW(p.std_in()->write("late"), std::logic_error);
    co_await p.std_in()->wait_closed();
    Bytes all = co_await std::move(reader);
    EXPECT_EQ(co_await p.wait(), 0);
    co_return all.str();
  }());
  EXPECT_TRUE(out == input);
}

// A child that exits without reading: communicate does not fail; the stdin stream reports the broken pipe.
TEST_F(SubprocessTest, ChildThatDoesNotReadStdin) {
  run([]() -> Coro<void> {
    const std::vector<std::string> argv{"true"};
    Process p = co_await tulipa::create_subprocess_exec(argv, pipes(true, false, false));
    tulipa::CommunicateResult r = co_await p.communicate(pattern(1 << 20));
    EXPECT_TRUE(r.std_out.empty());
    EXPECT_EQ(p.returncode(), 0);

    Process q = co_await tulipa::create_subprocess_exec(argv, pipes(true, false, false));
    q.std_in()->write(pattern(1 << 20));  // more than the pipe holds: the rest waits in the transport
    // The child exits without reading: the pipe breaks with data pending, and the stream ends with EPIPE.
    try {
      co_await q.std_in()->wait_closed();
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPIPE);
    }
    EXPECT_THROW(co_await q.std_in()->drain(), std::system_error);
    EXPECT_EQ(co_await q.wait(), 0);
  }());
}

TEST_F(SubprocessTest, DroppingAProcessKillsAndReapsItsChild) {
  run([]() -> Coro<void> {
    std::vector<std::string> argv{"sleep", "1000"};
    Process p = co_await tulipa::create_subprocess_exec(argv, pipes(true, true, true));
  }());
  // Each pass waits for an event (the child's exit); then the transport's last callbacks run (pipes lost,
  // process_exited, connection_lost) and it is freed: ASan's leak check would see it otherwise.
  run_until([&] { return no_children_left() && loop.ready_count() == 0; });
}

TEST_F(SubprocessTest, TwoHundredChildrenAtOnce) {
  constexpr int n = 200;
  std::vector<tulipa::Task<std::string>> tasks;
  for (int i = 0; i < n; ++i)
    tasks.push_back(tulipa::create_task(loop, [](int i) -> Coro<std::string> {
      Process p =
          co_await tulipa::create_subprocess_shell("cat; exit " + std::to_string(i % 50), pipes(true, true, false));
      tulipa::CommunicateResult r = co_await p.communicate("child " + std::to_string(i));
      EXPECT_EQ(p.returncode(), i % 50);
      co_return r.std_out.str();
    }(i)));
  run_until([&] {
    for (auto& t : tasks)
      if (!t.done()) return false;
    return true;
  });
  for (int i = 0; i < n; ++i) EXPECT_EQ(tasks[i].result(), "child " + std::to_string(i));
  EXPECT_TRUE(no_children_left());
}

// The same API when children are watched through SIGCHLD (kernels without pidfds).
TEST_F(SubprocessTest, SigchldWatching) {
  tulipa::detail::set_child_watch_mode(tulipa::detail::ChildWatchMode::sigchld);
  struct Restore {
    ~Restore() { tulipa::detail::set_child_watch_mode(tulipa::detail::ChildWatchMode::automatic); }
  } restore;
  constexpr int n = 20;
  std::vector<tulipa::Task<int>> tasks;
  for (int i = 0; i < n; ++i)
    tasks.push_back(tulipa::create_task(loop, [](int i) -> Coro<int> {
      Process p = co_await tulipa::create_subprocess_shell("cat; exit " + std::to_string(i), pipes(true, true, false));
      tulipa::CommunicateResult r = co_await p.communicate(std::to_string(i));
      EXPECT_EQ(r.std_out.str(), std::to_string(i));
      co_return *p.returncode();
    }(i)));
  run_until([&] {
    for (auto& t : tasks)
      if (!t.done()) return false;
    return loop.ready_count() == 0;
  });
  for (int i = 0; i < n; ++i) EXPECT_EQ(tasks[i].result(), i);
}

// run() does not close its loop over children: those still running when main returns are killed and reaped (the
// Process of a cancelled task kills its child; a low-level transport nobody closed is closed by run()).
TEST(SubprocessRun, RunLeavesNoChildBehind) {
  ASSERT_TRUE(no_children_left());
  int rc = tulipa::run([]() -> Coro<int> {
    tulipa::Future<void> spawned;
    tulipa::create_task([](tulipa::Future<void> spawned) -> Coro<void> {
      std::vector<std::string> argv{"sleep", "1000"};
      Process p = co_await tulipa::create_subprocess_exec(argv);
      spawned.set_result();
      co_await p.wait();  // cancelled by run() when main returns
    }(spawned));
    co_await spawned;
    std::vector<std::string> argv{"sleep", "1000"};
    tulipa::SubprocessOptions o = pipes(true, true, false);
    tulipa::subprocess_exec(tulipa::get_running_loop(), std::make_unique<tulipa::SubprocessProtocol>(), argv, o);
    co_return 7;
  }());
  EXPECT_EQ(rc, 7);
  EXPECT_TRUE(no_children_left());
}

}  // namespace

// A shell's commands share its process group, which the signals go to: killing the shell (kill(), or destroying the
// Process) ends the `sleep 30` it started too. With shell_process_group = false (asyncio's behaviour) the sleep
// would outlive the shell.
TEST_F(SubprocessTest, ShellGrandchildrenDieWithTheShell) {
  for (const bool destroy : {false, true}) {
    std::optional<Process> p;
    const int sleeper = run([&]() -> Coro<int> {
      p.emplace(
          co_await tulipa::create_subprocess_shell("sleep 30 >/dev/null & echo $!; wait", pipes(false, true, false)));
      co_return std::stoi((co_await p->std_out()->readline()).str());
    }());
    const int pidfd = open_pidfd(sleeper);
    ASSERT_GE(pidfd, 0);
    EXPECT_FALSE(ended_within(pidfd, 0ms));
    if (destroy) {
      p.reset();  // kills the child (its group) and still reaps it
      run_until([&] { return no_children_left(); });
    } else {
      p->kill();
      EXPECT_EQ(run(p->wait()), -SIGKILL);
    }
    EXPECT_TRUE(ended_within(pidfd, 10s)) << "the shell's `sleep 30` outlived it";
    ::close(pidfd);
  }
}

// The usual ways a shell's Process goes: the task that owns it is cancelled, or a timeout() scope around its
// wait() expires. Either way the Process is destroyed with the task's frame, which kills the shell's whole group:
// the `sleep 30` it started in the background dies too, and the library reaps the shell.
Coro<void> owns_a_shell(tulipa::Future<int>& sleeper_pid, std::optional<tulipa::Duration> limit) {
  Process p =
      co_await tulipa::create_subprocess_shell("sleep 30 >/dev/null & echo $!; wait", pipes(false, true, false));
  const tulipa::Bytes line = co_await p.std_out()->readline();
  sleeper_pid.set_result(std::stoi(line.str()));
  if (!limit) {
    co_await p.wait();  // until cancelled
    co_return;
  }
  Coro<int> wait = p.wait();
  co_await tulipa::timeout(*limit, std::move(wait));  // TimeoutError: p goes with this frame
}

TEST_F(SubprocessTest, CancellingTheTaskThatOwnsAShellKillsItsGroup) {
  tulipa::Future<int> sleeper(loop);
  tulipa::Task<void> owner = tulipa::create_task(loop, owns_a_shell(sleeper, std::nullopt));
  run_until([&] { return sleeper.done(); });
  const int pidfd = open_pidfd(sleeper.result());
  ASSERT_GE(pidfd, 0);
  EXPECT_FALSE(ended_within(pidfd, 0ms));
  owner.cancel();
  run_until([&] { return owner.done(); });
  EXPECT_TRUE(owner.cancelled());
  EXPECT_TRUE(ended_within(pidfd, 10s)) << "the shell's `sleep 30` outlived the cancelled task";
  ::close(pidfd);
  run_until([&] { return no_children_left(); });
}

TEST_F(SubprocessTest, ATimeoutAroundAShellsWaitKillsItsGroup) {
  tulipa::Future<int> sleeper(loop);
  tulipa::Task<void> owner = tulipa::create_task(loop, owns_a_shell(sleeper, tulipa::Duration(50ms)));
  run_until([&] { return owner.done(); });
  ASSERT_TRUE(sleeper.done());
  EXPECT_THROW(owner.result(), tulipa::TimeoutError);
  const int pidfd = open_pidfd(sleeper.result());
  // Already gone (pidfd_open fails with ESRCH) or ending.
  if (pidfd >= 0) {
    EXPECT_TRUE(ended_within(pidfd, 10s)) << "the shell's `sleep 30` outlived the timed-out wait";
    ::close(pidfd);
  }
  run_until([&] { return no_children_left(); });
}

// A loop closed over a running child (no run(), no wait): the child is killed and reaped, the Process learns its
// exit, and the transport, its pipes and the Process's state go with the loop (LeakSanitizer would report them).
TEST_F(SubprocessTest, ClosingTheLoopEndsAChildStillRunning) {
  EventLoop other;
  Process p = tulipa::spawn_process(other, {"sleep", "1000"}, pipes(true, true, true));
  const tulipa::Bytes queued(std::string(256 * 1024, 'x'));  // more than the pipe holds: stdin keeps a queue
  p.std_in()->write(queued);
  other.close();
  EXPECT_EQ(p.returncode(), -SIGKILL);
  EXPECT_TRUE(no_children_left());
}

TEST_F(SubprocessTest, ShellProcessGroupCanBeTurnedOff) {
  std::optional<Process> p;
  SubprocessOptions o = pipes(false, true, false);
  o.shell_process_group = false;
  const int sleeper = run([&]() -> Coro<int> {
    p.emplace(co_await tulipa::create_subprocess_shell("sleep 30 >/dev/null & echo $!; wait", o));
    co_return std::stoi((co_await p->std_out()->readline()).str());
  }());
  EXPECT_EQ(::getpgid(p->pid()), ::getpgrp());  // the shell stayed in our process group (asyncio's way)
  EXPECT_EQ(::getpgid(sleeper), ::getpgrp());
  ::kill(sleeper, SIGKILL);      // ours to end: a signal to the shell would not reach it
  EXPECT_EQ(run(p->wait()), 0);  // the shell's `wait` returns once the sleep is gone
}
