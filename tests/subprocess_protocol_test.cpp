// Subprocesses, the low level: subprocess_exec/subprocess_shell with a SubprocessProtocol, real programs (sh, cat,
// head, printf, sleep), and both ways of watching children (pidfd and SIGCHLD), each test running under both.
// Every wait is on an event; a watchdog timer only turns a hang into a failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "subprocess/child_watcher.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/subprocess.hpp"

using namespace std::chrono_literals;
using tulipa::EventLoop;
using tulipa::Stdio;
using tulipa::SubprocessOptions;
using tulipa::SubprocessTransport;
using tulipa::detail::ChildWatchMode;

namespace {

// What a protocol saw, kept outside the protocol (which the transport destroys after connection_lost).
struct Record {
  std::string out, err;
  std::vector<std::string> events;  // "made", "lost0", "lost1", "lost2", "exited", "connection_lost"
  std::exception_ptr stdin_error;
  std::exception_ptr lost_error;
  std::optional<int> returncode;
  int pauses = 0, resumes = 0;
  bool done = false;
  SubprocessTransport* transport = nullptr;
};

class Recorder : public tulipa::SubprocessProtocol {
 public:
  explicit Recorder(Record& r, EventLoop* stop_when_done = nullptr) : r_(r), loop_(stop_when_done) {}
  void connection_made(SubprocessTransport& t) override {
    r_.transport = &t;
    r_.events.push_back("made");
  }
  void pipe_data_received(int fd, std::span<const std::byte> data) override {
    EXPECT_FALSE(data.empty());
    (fd == 1 ? r_.out : r_.err).append(reinterpret_cast<const char*>(data.data()), data.size());
  }
  void pipe_connection_lost(int fd, std::exception_ptr exc) override {
    r_.events.push_back("lost" + std::to_string(fd));
    if (fd == 0) r_.stdin_error = exc;
  }
  void process_exited() override {
    r_.events.push_back("exited");
    r_.returncode = r_.transport->get_returncode();
  }
  void connection_lost(std::exception_ptr exc) override {
    r_.events.push_back("connection_lost");
    r_.lost_error = exc;
    r_.done = true;
    r_.transport = nullptr;
    if (loop_) loop_->stop();
  }
  void pause_writing() override { ++r_.pauses; }
  void resume_writing() override { ++r_.resumes; }

 private:
  Record& r_;
  EventLoop* loop_;
};

// No child of this process is left, running or zombie (waitid says ECHILD).
bool no_children_left() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

class SubprocessProtocolTest : public ::testing::TestWithParam<ChildWatchMode> {
 protected:
  void SetUp() override {
    tulipa::detail::set_child_watch_mode(GetParam());
    ASSERT_TRUE(no_children_left()) << "a previous test left a child behind";
  }
  void TearDown() override {
    tulipa::detail::set_child_watch_mode(ChildWatchMode::automatic);
    EXPECT_TRUE(no_children_left());
  }

  // Runs the loop until `r` is done (connection_lost ran); a watchdog turns a hang into a failure.
  void run_until_done(const Record& r) {
    run_until([&] { return r.done; });
  }
  template <class Pred>
  void run_until(Pred pred) {
    bool timed_out = false;
    auto watchdog = loop.call_later(60s, [&] { timed_out = true; });
    while (!pred() && !timed_out) loop.run_once();
    watchdog.cancel();
    ASSERT_FALSE(timed_out) << "watchdog fired";
  }
  SubprocessTransport& exec(Record& r, std::vector<std::string> argv, SubprocessOptions o = {}) {
    return tulipa::subprocess_exec(loop, std::make_unique<Recorder>(r), std::move(argv), std::move(o));
  }
  static SubprocessOptions pipes(bool in, bool out, bool err) {
    SubprocessOptions o;
    if (in) o.std_in = Stdio::pipe();
    if (out) o.std_out = Stdio::pipe();
    if (err) o.std_err = Stdio::pipe();
    return o;
  }

  EventLoop loop;
};

TEST_P(SubprocessProtocolTest, OutputThenPipesLostThenExitedThenConnectionLost) {
  Record r;
  SubprocessTransport& t = exec(r, {"printf", "hello"}, pipes(false, true, true));
  EXPECT_GT(t.get_pid(), 0);
  EXPECT_FALSE(t.get_returncode());
  EXPECT_EQ(t.get_pipe_transport(0), nullptr);
  EXPECT_NE(t.get_pipe_transport(1), nullptr);
  EXPECT_NE(t.get_pipe_transport(2), nullptr);
  EXPECT_EQ(r.events, std::vector<std::string>{"made"});  // connection_made ran inside subprocess_exec
  run_until_done(r);
  EXPECT_EQ(r.out, "hello");
  EXPECT_EQ(r.err, "");
  ASSERT_EQ(r.events.size(), 5u);
  EXPECT_EQ(r.events[0], "made");
  // The pipes go in whatever order the kernel reports them, but both before the exit.
  EXPECT_TRUE((r.events[1] == "lost1" && r.events[2] == "lost2") || (r.events[1] == "lost2" && r.events[2] == "lost1"));
  EXPECT_EQ(r.events[3], "exited");
  EXPECT_EQ(r.events[4], "connection_lost");
  EXPECT_EQ(r.returncode, 0);
  EXPECT_EQ(r.lost_error, nullptr);
}

TEST_P(SubprocessProtocolTest, ExitCodes) {
  Record a, b, c;
  exec(a, {"sh", "-c", "exit 3"});
  exec(b, {"false"});
  tulipa::subprocess_shell(loop, std::make_unique<Recorder>(c), "exit 255");
  run_until([&] { return a.done && b.done && c.done; });
  EXPECT_EQ(a.returncode, 3);
  EXPECT_EQ(b.returncode, 1);
  EXPECT_EQ(c.returncode, 255);
}

// head writes 1 MiB, 16 times what the pipe holds: it blocks until we read, and we read as it writes.
TEST_P(SubprocessProtocolTest, ChildWritesMoreThanAPipeHolds) {
  Record r;
  exec(r, {"head", "-c", "1048576", "/dev/zero"}, pipes(false, true, false));
  run_until_done(r);
  ASSERT_EQ(r.out.size(), 1048576u);
  EXPECT_EQ(r.out, std::string(1048576, '\0'));
  EXPECT_EQ(r.returncode, 0);
}

// cat reads all of 1 MiB of stdin and gives it back; the stdin transport buffers what the pipe does not take,
// pauses the protocol above 64 KiB and resumes it as cat catches up; write_eof lets cat finish.
TEST_P(SubprocessProtocolTest, ChildReadsAllOfStdin) {
  Record r;
  SubprocessTransport& t = exec(r, {"cat"}, pipes(true, true, false));
  const std::string input = pattern(1 << 20);
  tulipa::WriteTransport* in = t.get_stdin_transport();
  ASSERT_NE(in, nullptr);
  in->write(input);
  EXPECT_GT(in->get_write_buffer_size(), 0u);
  EXPECT_EQ(r.pauses, 1);
  in->write_eof();
  EXPECT_TRUE(in->is_closing());
  EXPECT_THROW(in->write("more"), std::logic_error);
  run_until_done(r);
  EXPECT_EQ(r.out.size(), input.size());
  EXPECT_TRUE(r.out == input);
  EXPECT_EQ(r.resumes, 1);
  EXPECT_EQ(r.stdin_error, nullptr);
  EXPECT_EQ(r.returncode, 0);
  EXPECT_EQ(r.events.back(), "connection_lost");
}

TEST_P(SubprocessProtocolTest, StdinBufferLimitsAndAbort) {
  Record r;
  // sh reads nothing until its sleep is killed: whatever exceeds the pipe stays in our buffer.
  SubprocessTransport& t = exec(r, {"sh", "-c", "read x; exec sleep 1000"}, pipes(true, false, false));
  tulipa::WriteTransport* in = t.get_stdin_transport();
  EXPECT_THROW(in->set_write_buffer_limits(10, 20), std::invalid_argument);
  in->set_write_buffer_limits(1000);
  EXPECT_EQ(in->get_write_buffer_limits().high, 1000u);
  EXPECT_EQ(in->get_write_buffer_limits().low, 250u);
  EXPECT_TRUE(in->can_write_eof());
  EXPECT_EQ(t.get_pipe_transport(0), static_cast<tulipa::BaseTransport*>(in));
  in->write(pattern(1 << 20));  // no newline: `read` keeps waiting
  EXPECT_GT(in->get_write_buffer_size(), 1000u);
  EXPECT_EQ(r.pauses, 1);
  in->abort();  // drops the buffer: no EPIPE, no resume
  EXPECT_EQ(in->get_write_buffer_size(), 0u);
  EXPECT_TRUE(in->is_closing());
  EXPECT_THROW(in->write("x"), std::logic_error);
  run_until([&] { return r.events.size() >= 2; });  // lost0
  EXPECT_EQ(r.events[1], "lost0");
  EXPECT_EQ(r.stdin_error, nullptr);
  EXPECT_EQ(r.resumes, 0);
  t.kill();
  run_until_done(r);
  EXPECT_EQ(r.returncode, -SIGKILL);
}

TEST_P(SubprocessProtocolTest, WritelinesGoesThroughInOrder) {
  Record r;
  SubprocessTransport& t = exec(r, {"cat"}, pipes(true, true, false));
  std::string a = "one ", b = "two ", c(200000, 'x');
  t.get_stdin_transport()->writelines(
      {std::as_bytes(std::span(a)), std::as_bytes(std::span(b)), std::as_bytes(std::span(c))});
  t.get_stdin_transport()->write("end");
  t.get_stdin_transport()->close();
  run_until_done(r);
  EXPECT_TRUE(r.out == a + b + c + "end");
}

// The child exits without reading: the stdin pipe breaks. SIGPIPE must not kill us; the transport reports EPIPE
// (data was pending) and the rest of the protocol's life goes on.
TEST_P(SubprocessProtocolTest, ChildThatDoesNotReadStdin) {
  Record r;
  SubprocessTransport& t = exec(r, {"true"}, pipes(true, false, false));
  t.get_stdin_transport()->write(pattern(1 << 20));  // more than the pipe holds: some stays buffered
  run_until_done(r);
  EXPECT_EQ(r.returncode, 0);
  ASSERT_NE(r.stdin_error, nullptr);
  try {
    std::rethrow_exception(r.stdin_error);
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EPIPE);
  }
}

// Idle stdin (nothing buffered): the reader's exit is noticed on the write end and the pipe is lost cleanly.
TEST_P(SubprocessProtocolTest, IdleStdinIsLostWhenTheChildExits) {
  Record r;
  exec(r, {"true"}, pipes(true, false, false));
  run_until_done(r);
  EXPECT_EQ(r.stdin_error, nullptr);
  EXPECT_EQ(r.events, (std::vector<std::string>{"made", "lost0", "exited", "connection_lost"}));
}

TEST_P(SubprocessProtocolTest, KillAndTerminateGiveMinusTheSignal) {
  Record k, t, u;
  exec(k, {"sleep", "1000"}).kill();
  exec(t, {"sleep", "1000"}).terminate();
  exec(u, {"sleep", "1000"}).send_signal(SIGUSR1);
  run_until([&] { return k.done && t.done && u.done; });
  EXPECT_EQ(k.returncode, -SIGKILL);
  EXPECT_EQ(t.returncode, -SIGTERM);
  EXPECT_EQ(u.returncode, -SIGUSR1);
}

TEST_P(SubprocessProtocolTest, CloseKillsARunningChildAndStillReportsItsExit) {
  Record r;
  SubprocessTransport& t = exec(r, {"sleep", "1000"}, pipes(true, true, true));
  t.close();
  EXPECT_TRUE(t.is_closing());
  t.close();  // idempotent
  run_until_done(r);
  EXPECT_EQ(r.returncode, -SIGKILL);
  EXPECT_EQ(r.events.front(), "made");
  EXPECT_EQ(r.events.back(), "connection_lost");
  EXPECT_EQ(r.events.size(), 6u);
}

// The loop's close() ends a transport whose child still runs: killed and reaped at once, then the pipes, the exit
// and connection_lost in the usual order, and nothing left (LeakSanitizer would report the transport).
TEST_P(SubprocessProtocolTest, ClosingTheLoopKillsAndEndsARunningChild) {
  Record r;
  SubprocessTransport& t = exec(r, {"sleep", "1000"}, pipes(true, true, true));
  const std::string big = pattern(256 * 1024);  // more than the pipe holds: stdin keeps a queue
  t.get_stdin_transport()->write(std::as_bytes(std::span(big)));
  loop.close();
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.returncode, -SIGKILL);
  ASSERT_EQ(r.events.size(), 6u);
  EXPECT_EQ(r.events.front(), "made");
  EXPECT_EQ(r.events[4], "exited");
  EXPECT_EQ(r.events.back(), "connection_lost");
  EXPECT_TRUE(no_children_left());
}

// The loop closes over a child that exited but was not reaped yet (the loop never ran to see it): close() reaps it
// with its real exit code; the pipe's loss, the exit and connection_lost follow, from the callbacks close() drops.
TEST_P(SubprocessProtocolTest, ClosingTheLoopReapsAChildThatExitedUnseen) {
  Record r;
  SubprocessTransport& t = exec(r, {"sh", "-c", "exit 3"}, pipes(false, true, false));
  siginfo_t info{};  // until it is a zombie, leaving it unreaped (WNOWAIT)
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(t.get_pid()), &info, WEXITED | WNOWAIT), 0);
  loop.close();
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.returncode, 3);
  EXPECT_EQ(r.events, (std::vector<std::string>{"made", "lost1", "exited", "connection_lost"}));
}

TEST_P(SubprocessProtocolTest, MissingProgramThrowsEnoentWithItsName) {
  bool destroyed = false;
  struct P : tulipa::SubprocessProtocol {
    bool* d;
    explicit P(bool* d) : d(d) {}
    ~P() override { *d = true; }
  };
  try {
    tulipa::subprocess_exec(loop, std::make_unique<P>(&destroyed), {"/nonexistent/tulipa-no-such-program"},
                            pipes(true, true, true));
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("tulipa-no-such-program"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(destroyed);
  EXPECT_THROW(tulipa::subprocess_exec(loop, std::make_unique<P>(&destroyed), {"tulipa-no-such-program-in-path"}),
               std::system_error);
  EXPECT_THROW(tulipa::subprocess_exec(loop, std::make_unique<P>(&destroyed), {}), std::invalid_argument);
  SubprocessOptions bad;
  bad.std_out = Stdio::to_stdout();
  EXPECT_THROW(tulipa::subprocess_exec(loop, std::make_unique<P>(&destroyed), {"true"}, bad), std::invalid_argument);
  SubprocessOptions nocwd;
  nocwd.cwd = "/nonexistent-dir-tulipa";
  EXPECT_THROW(tulipa::subprocess_exec(loop, std::make_unique<P>(&destroyed), {"true"}, nocwd), std::system_error);
}

TEST_P(SubprocessProtocolTest, StderrToStdoutDevnullEnvAndCwd) {
  Record r;
  SubprocessOptions o = pipes(false, true, false);
  o.std_in = Stdio::devnull();
  o.std_err = Stdio::to_stdout();
  const std::vector<std::string> env{"TULIPA_X=42", "PATH=/usr/bin:/bin"};
  o.env = env;
  o.cwd = "/";
  exec(r, {"/bin/sh", "-c", "echo out; echo err >&2; echo \"$TULIPA_X\"; pwd; cat; echo end"}, o);
  run_until_done(r);
  EXPECT_EQ(r.out, "out\nerr\n42\n/\nend\n");
  EXPECT_EQ(r.err, "");
}

TEST_P(SubprocessProtocolTest, FromFdAndCloseFds) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);  // deliberately not close-on-exec: close_fds must keep it from the child
  Record r;
  SubprocessOptions o = pipes(false, true, false);
  o.std_err = Stdio::from_fd(p[1]);
  exec(r, {"/bin/sh", "-c", "echo to-fd >&2; ls /proc/self/fd"}, o);
  run_until_done(r);
  ::close(p[1]);
  char buf[64] = {};
  ssize_t n = ::read(p[0], buf, sizeof buf);
  ::close(p[0]);
  EXPECT_EQ(std::string(buf, n > 0 ? size_t(n) : 0), "to-fd\n");
  // ls sees 0, 1, 2 and its own directory fd (3) only.
  EXPECT_EQ(r.out, "0\n1\n2\n3\n");
}

// Our child watching reaps exactly our children: a child someone else spawned stays for its owner to reap.
TEST_P(SubprocessProtocolTest, ForeignChildIsNotReaped) {
  pid_t foreign;
  char* argv[] = {const_cast<char*>("true"), nullptr};
  ASSERT_EQ(::posix_spawnp(&foreign, "true", nullptr, nullptr, argv, environ), 0);
  Record r;
  exec(r, {"sh", "-c", "exit 7"});
  run_until_done(r);
  EXPECT_EQ(r.returncode, 7);
  int status = 0;
  ASSERT_EQ(::waitpid(foreign, &status, 0), foreign);  // still ours to reap
  EXPECT_TRUE(WIFEXITED(status));
}

TEST_P(SubprocessProtocolTest, ProtocolExceptionIsReportedAndKillsTheChild) {
  std::vector<std::string> reported;
  loop.set_exception_handler([&](EventLoop&, const tulipa::ErrorContext& c) { reported.push_back(c.message); });
  struct Thrower : Recorder {
    using Recorder::Recorder;
    void pipe_data_received(int, std::span<const std::byte>) override { throw std::runtime_error("boom"); }
  };
  Record r;
  tulipa::subprocess_shell(loop, std::make_unique<Thrower>(r), "echo hi; exec sleep 1000", pipes(false, true, false));
  run_until_done(r);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_NE(reported[0].find("pipe_data_received"), std::string::npos);
  EXPECT_EQ(r.returncode, -SIGKILL);
  ASSERT_NE(r.lost_error, nullptr);
  EXPECT_THROW(std::rethrow_exception(r.lost_error), std::runtime_error);
}

TEST_P(SubprocessProtocolTest, PauseAndResumeReading) {
  Record r;
  SubprocessTransport& t = exec(r, {"head", "-c", "300000", "/dev/zero"}, pipes(false, true, false));
  tulipa::ReadTransport* out = t.get_stdout_transport();
  out->pause_reading();
  EXPECT_FALSE(out->is_reading());
  // Wait (on the loop, never sleeping) until the child's output waits in the pipe; while paused, loop passes
  // deliver none of it.
  const int fd = out->fd();
  ASSERT_GE(fd, 0);
  auto pending = [fd] {
    int n = 0;
    return ::ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
  };
  run_until([&] {
    loop.call_soon([] {});  // keeps run_once from blocking: the paused pipe is not polled
    return pending() > 0;
  });
  for (int i = 0; i < 5; ++i) {
    loop.call_soon([] {});
    loop.run_once();
  }
  EXPECT_EQ(r.out.size(), 0u);
  out->resume_reading();
  EXPECT_TRUE(out->is_reading());
  run_until_done(r);
  EXPECT_EQ(r.out.size(), 300000u);
}

// A protocol that pauses its stdout after every chunk and resumes it from a later callback, every other time only
// for an instant (resumed and paused again in one callback, so that a read is armed and completes while paused): each
// chunk read meanwhile is held by the transport (on io_uring: the provided buffer of a read that completed while
// paused) and must arrive after the resume, in order; so must the EOF when it comes while paused.
class PausingEveryChunk : public Recorder {
 public:
  PausingEveryChunk(Record& r, EventLoop& loop) : Recorder(r), r_(r), loop_(loop) {}
  void pipe_data_received(int fd, std::span<const std::byte> data) override {
    EXPECT_FALSE(paused_) << "data while paused";
    Recorder::pipe_data_received(fd, data);
    if (fd != 1) return;
    r_.transport->get_stdout_transport()->pause_reading();
    paused_ = true;
    loop_.call_soon([this] { flip(); });
  }
  void flip() {
    if (r_.transport == nullptr) return;
    tulipa::ReadTransport* out = r_.transport->get_stdout_transport();
    paused_ = false;
    out->resume_reading();
    if (++flips_ % 2 == 0) {
      out->pause_reading();
      paused_ = true;
      loop_.call_soon([this] { flip(); });
    }
  }
  void pipe_connection_lost(int fd, std::exception_ptr exc) override {
    if (fd == 1) r_.events.push_back("out " + std::to_string(r_.out.size()));
    Recorder::pipe_connection_lost(fd, exc);
  }

 private:
  Record& r_;
  EventLoop& loop_;
  bool paused_ = false;
  int flips_ = 0;
};

TEST_P(SubprocessProtocolTest, OutputPausedAfterEveryChunkArrivesInOrderThenItsEof) {
  Record r;
  std::string expected;
  for (int i = 1; i <= 40000; ++i) expected += std::to_string(i) + "\n";
  SubprocessTransport& t = tulipa::subprocess_exec(loop, std::make_unique<PausingEveryChunk>(r, loop),
                                                   {"seq", "1", "40000"}, pipes(false, true, false));
  if (loop.selector().name() == "uring") {  // read through the ring, not polled
    EXPECT_FALSE(loop.selector().is_registered(t.get_stdout_transport()->fd()));
  }
  run_until_done(r);
  EXPECT_TRUE(r.out == expected) << r.out.size() << " bytes of " << expected.size();
  EXPECT_NE(std::find(r.events.begin(), r.events.end(), "out " + std::to_string(expected.size())), r.events.end());
}

TEST_P(SubprocessProtocolTest, TwoHundredChildrenAtOnce) {
  constexpr int n = 200;
  std::vector<Record> records(n);
  for (int i = 0; i < n; ++i)
    exec(records[i], {"sh", "-c", "echo " + std::to_string(i) + "; exit " + std::to_string(i % 100)},
         pipes(true, true, false));
  int done = 0;
  run_until([&] {
    done = 0;
    for (auto& r : records) done += r.done;
    return done == n;
  });
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(records[i].out, std::to_string(i) + "\n");
    EXPECT_EQ(records[i].returncode, i % 100);
  }
  EXPECT_TRUE(no_children_left());
}

INSTANTIATE_TEST_SUITE_P(Watch, SubprocessProtocolTest,
                         ::testing::Values(ChildWatchMode::pidfd, ChildWatchMode::sigchld),
                         [](const auto& info) { return info.param == ChildWatchMode::pidfd ? "pidfd" : "sigchld"; });

}  // namespace
