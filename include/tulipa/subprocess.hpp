// Subprocesses, the low level (asyncio's loop.subprocess_exec / loop.subprocess_shell with a SubprocessProtocol).
// The coroutine API on top of it (create_subprocess_exec, Process) is in process.hpp.
//
// Call order, for a SubprocessProtocol (as asyncio 3.12):
//
//     start -> connection_made
//         [-> pipe_data_received(fd, data) | pause_writing/resume_writing]*
//         -> pipe_connection_lost(fd, exc), once for each of the child's stdio streams that is a pipe
//     -> process_exited -> connection_lost -> end
//
// process_exited comes only once the child exited AND every pipe is lost, so all of the child's output has been
// delivered by then. A pipe is lost when the child (and every process it shared the pipe with) closed its end, or
// when our side closed it. Hence: a grandchild that keeps the child's stdout open (`sh -c 'sleep 100 &'`) delays
// process_exited until it exits too, as in asyncio. pipe_connection_lost(0, exc) for stdin has exc set when a write
// failed because the child closed its stdin with data still to go (std::system_error EPIPE), and null when the
// child went while nothing was pending; a write to stdin after the pipe broke is dropped silently (the protocol was
// already told).
//
// The child: spawned with posix_spawn (vfork-like, so spawning costs the same for a large parent). Its file
// descriptors other than 0, 1, 2 are closed (close_fds), its signal mask is empty, and SIGPIPE and SIGXFSZ are
// back to their default action (as Python's restore_signals). Errors in spawning (the program is missing, is not
// executable, the cwd does not exist) throw std::system_error from subprocess_exec with the program's name; the
// program is looked up in the parent's PATH when it contains no '/'.
//
// Exit is watched without blocking the loop: with a pidfd (Linux >= 5.3) that the loop polls, reaped with
// waitid(P_PIDFD), so exactly our child is reaped and no other part of the process is disturbed. On kernels
// without pidfds, the loop handles SIGCHLD and reaps only the pids it started (waitpid(pid, WNOHANG) each); then
// SIGCHLD belongs to that loop (only one loop in the process can run children, and a SIGCHLD handler the
// application set on that loop is replaced).
// The return code is as asyncio's: the exit status, or -N when signal N killed the child.
//
// SIGPIPE: writing to a pipe whose reader exited raises SIGPIPE, whose default action kills the writer. The first
// subprocess with a stdin pipe therefore sets SIGPIPE to SIG_IGN in this process if it was at its default (as the
// Python interpreter does at start-up); writes then fail with EPIPE, which the stdin transport reports.
//
// Ownership and lifetimes:
// - subprocess_exec returns a SubprocessTransport& owned by the library. It owns the protocol and the three pipe
//   transports. After connection_lost returned, the protocol, the pipe transports and the SubprocessTransport are
//   destroyed: the references stay valid until then.
// - close() closes our ends of the pipes and kills the child (SIGKILL) if it has not exited; the library still reaps
//   it, then process_exited and connection_lost follow as above. Nothing is left behind: no zombie, no fd.
// - run() (runner.hpp) does not close its loop over children: a shutdown hook closes every subprocess transport
//   still alive (killing what still runs) and waits until each child was reaped and its transport finished.
//   A loop driven by hand and closed while a child runs leaks the transport (as socket transports are leaked) and
//   leaves the child a zombie until this process exits: close or wait for your children before closing it.
// - All members are called on the loop's thread only. pipe_data_received's span is valid during the call only.
//
// Exceptions from protocol methods are reported through the loop's exception handler; the transport is then
// closed (the child killed) and connection_lost gets that exception.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tulipa/loop.hpp"
#include "tulipa/protocol.hpp"
#include "tulipa/transport.hpp"

namespace tulipa {

class EventLoop;
class SubprocessTransport;

// What the child gets as one of its standard streams (asyncio's PIPE, DEVNULL, STDOUT, None, or a file descriptor).
// `stdin`, `stdout` and `stderr` are macros in C, hence the names.
class Stdio {
 public:
  enum class Kind : unsigned char { inherit, pipe, devnull, to_stdout, fd };
  // The parent's own stream (asyncio's None).
  static constexpr Stdio inherit() noexcept { return Stdio(Kind::inherit, -1); }
  // A pipe to the parent: a pipe transport on our side.
  static constexpr Stdio pipe() noexcept { return Stdio(Kind::pipe, -1); }
  static constexpr Stdio devnull() noexcept { return Stdio(Kind::devnull, -1); }
  // Only for stderr: wherever stdout goes (asyncio's STDOUT).
  static constexpr Stdio to_stdout() noexcept { return Stdio(Kind::to_stdout, -1); }
  // A file descriptor of the caller's, duplicated into the child. Borrowed: the caller keeps it and closes it.
  static constexpr Stdio from_fd(int fd) noexcept { return Stdio(Kind::fd, fd); }

  constexpr Kind kind() const noexcept { return kind_; }
  constexpr int fd() const noexcept { return fd_; }

 private:
  constexpr Stdio(Kind k, int fd) noexcept : kind_(k), fd_(fd) {}
  Kind kind_;
  int fd_;
};

// Trivially copyable on purpose (cwd and env are borrowed views), so that options built inline in a co_await
// expression survive g++ 12 (docs/coroutines.md, "g++ 12").
//
// Build them with the with_*() setters, each returning a copy with one field changed:
//   SubprocessOptions().with_stdin(Stdio::pipe()).with_stdout(Stdio::pipe())
// Designated initialisers (`{.std_in = Stdio::pipe()}`) work too, with no -Wmissing-field-initializers warning
// under -Wextra: every field has a default member initializer (as in every options struct of tulipa's).
struct SubprocessOptions {
  // Unlike asyncio's low-level loop.subprocess_exec (PIPE by default), every stream is inherited unless asked for,
  // as with create_subprocess_exec and Popen: one set of defaults for both levels.
  Stdio std_in = Stdio::inherit();
  Stdio std_out = Stdio::inherit();
  Stdio std_err = Stdio::inherit();
  // The child's environment, "NAME=value" each; nullopt: this process's environment. Borrowed, like cwd.
  std::optional<std::span<const std::string>> env{};
  // The child's working directory; empty: ours. Borrowed: valid until subprocess_exec returns (for the coroutine
  // API, until the co_await create_subprocess_exec(...) completes).
  std::string_view cwd{};
  // setsid() in the child (a new session and process group, no controlling terminal).
  bool start_new_session = false;
  // setpgid(0, group) in the child; 0 makes a new group led by the child.
  std::optional<int> process_group{};
  // subprocess_shell / create_subprocess_shell only. true: the shell starts in a process group of its own, and every
  // signal tulipa sends it (send_signal, terminate, kill, and the SIGKILL of close(), cancellation, a timeout or
  // destruction) goes to that whole group, so the commands the shell started die with it instead of living on as
  // orphans (asyncio signals the shell alone: `sleep 30` outlives it). false: asyncio's behaviour, the shell alone
  // in our process group. Ignored when process_group or start_new_session is set (then the caller chose).
  bool shell_process_group = true;
  // Close every fd above 2 in the child. Ours are all close-on-exec anyway; this also catches the application's.
  bool close_fds = true;
  // For create_subprocess_exec/shell only: the pipes' stream limit (asyncio's `limit`; see streams.hpp).
  std::size_t limit = 64 * 1024;

 private:
  // A copy with one field changed (declared before the setters: clang evaluates them in constant expressions).
  template <class M>
  constexpr SubprocessOptions with(M SubprocessOptions::* field, M value) const noexcept {
    SubprocessOptions copy = *this;
    copy.*field = value;
    return copy;
  }

 public:
  constexpr SubprocessOptions with_stdin(Stdio s) const noexcept { return with(&SubprocessOptions::std_in, s); }
  constexpr SubprocessOptions with_stdout(Stdio s) const noexcept { return with(&SubprocessOptions::std_out, s); }
  constexpr SubprocessOptions with_stderr(Stdio s) const noexcept { return with(&SubprocessOptions::std_err, s); }
  constexpr SubprocessOptions with_env(std::span<const std::string> e) const noexcept {
    return with(&SubprocessOptions::env, std::optional<std::span<const std::string>>(e));
  }
  constexpr SubprocessOptions with_cwd(std::string_view dir) const noexcept {
    return with(&SubprocessOptions::cwd, dir);
  }
  constexpr SubprocessOptions with_start_new_session(bool on = true) const noexcept {
    return with(&SubprocessOptions::start_new_session, on);
  }
  constexpr SubprocessOptions with_process_group(int group) const noexcept {
    return with(&SubprocessOptions::process_group, std::optional<int>(group));
  }
  constexpr SubprocessOptions with_shell_process_group(bool on) const noexcept {
    return with(&SubprocessOptions::shell_process_group, on);
  }
  constexpr SubprocessOptions with_close_fds(bool on) const noexcept { return with(&SubprocessOptions::close_fds, on); }
  constexpr SubprocessOptions with_limit(std::size_t bytes) const noexcept {
    return with(&SubprocessOptions::limit, bytes);
  }
};

static_assert(std::is_trivially_copyable_v<SubprocessOptions>);

// The user's side of a subprocess. The call order is at the top of this file.
class SubprocessProtocol : public BaseProtocol {
 public:
  virtual void connection_made(SubprocessTransport& transport) { (void)transport; }
  // `fd` is the child's: 1 (stdout) or 2 (stderr). `data` is valid only during the call; never empty.
  virtual void pipe_data_received(int fd, std::span<const std::byte> data) {
    (void)fd;
    (void)data;
  }
  // The pipe for the child's `fd` (0, 1 or 2) is closed; exc is null for EOF or our own close.
  virtual void pipe_connection_lost(int fd, std::exception_ptr exc) {
    (void)fd;
    (void)exc;
  }
  // The child exited and every pipe is lost; the transport's get_returncode() has the status.
  virtual void process_exited() {}
};

class SubprocessTransport {
 public:
  virtual int get_pid() const noexcept = 0;
  // nullopt while the child runs (or before it was reaped).
  virtual std::optional<int> get_returncode() const noexcept = 0;
  // Our end of the pipe for the child's fd 0, 1 or 2; null when that stream is not a pipe. The pipe transports live
  // as long as this transport (closed ones report is_closing()).
  virtual WriteTransport* get_stdin_transport() noexcept = 0;
  virtual ReadTransport* get_stdout_transport() noexcept = 0;
  virtual ReadTransport* get_stderr_transport() noexcept = 0;
  BaseTransport* get_pipe_transport(int fd) noexcept;

  // Sends signal `signum`. Does nothing once the child was reaped (its pid may belong to another process by then).
  // With pidfds the signal goes through the pidfd, so it can never reach a recycled pid. Bad numbers throw
  // std::system_error(EINVAL).
  virtual void send_signal(int signum) = 0;
  void terminate();  // SIGTERM
  void kill();       // SIGKILL

  // See "Ownership and lifetimes" above. Idempotent.
  virtual void close() = 0;
  virtual bool is_closing() const noexcept = 0;
  virtual EventLoop& get_loop() const noexcept = 0;
  virtual SubprocessProtocol& get_protocol() const noexcept = 0;

 protected:
  ~SubprocessTransport() = default;
};

// Runs argv[0] with arguments argv (argv[0] is also the child's argv[0]). connection_made runs before this returns.
// Throws std::invalid_argument for an empty argv, a string holding '\0', or a Stdio that makes no sense where it is
// given (to_stdout other than for stderr, a negative fd); std::system_error for spawn errors (see the top). On a
// throw the protocol is destroyed without any of its methods called.
SubprocessTransport& subprocess_exec(EventLoop& loop, std::unique_ptr<SubprocessProtocol> protocol,
                                     std::vector<std::string> argv, SubprocessOptions options = {});
// Runs `/bin/sh -c command` in a process group of its own, which every signal goes to (see
// SubprocessOptions::shell_process_group).
SubprocessTransport& subprocess_shell(EventLoop& loop, std::unique_ptr<SubprocessProtocol> protocol,
                                      std::string_view command, SubprocessOptions options = {});

// The same on the running loop (std::runtime_error when none runs on this thread).
inline SubprocessTransport& subprocess_exec(std::unique_ptr<SubprocessProtocol> protocol, std::vector<std::string> argv,
                                            SubprocessOptions options = {}) {
  return subprocess_exec(get_running_loop(), std::move(protocol), std::move(argv), options);
}
inline SubprocessTransport& subprocess_shell(std::unique_ptr<SubprocessProtocol> protocol, std::string_view command,
                                             SubprocessOptions options = {}) {
  return subprocess_shell(get_running_loop(), std::move(protocol), command, options);
}

}  // namespace tulipa
