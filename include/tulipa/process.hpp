// Subprocesses with coroutines (asyncio.create_subprocess_exec / create_subprocess_shell and asyncio.subprocess's
// Process), on top of the low level in subprocess.hpp (whose notes on spawning, exit watching, SIGPIPE and the
// order of events hold here too).
//
//   auto options = tulipa::SubprocessOptions().with_stdin(tulipa::Stdio::pipe()).with_stdout(tulipa::Stdio::pipe());
//   tulipa::Process p = co_await tulipa::create_subprocess_exec(options, "sort");
//   auto [out, err] = co_await p.communicate("b\na\n");   // out == "a\nb\n"; p.returncode() == 0
//
// The pipes are streams (streams.hpp), as in asyncio: std_in() is a StreamWriter, std_out() and std_err() are
// StreamReaders (null when that stream is not a pipe), with the streams' flow control: a reader stops reading the
// pipe (so the child blocks writing) when more than 2 x limit (64 KiB) wait unread, and resumes below the limit.
// Deadlock warning, as in asyncio: wait() with a stdout or stderr pipe nobody reads never returns when the child
// writes more than that. Use communicate(), or read while waiting. Dropping every handle of a pipe's stream
// closes our end of that pipe.
//
// wait() returns once the child exited and its pipes are closed, so all of its output is in the readers by then
// (asyncio 3.12). communicate(input) writes `input` to stdin and closes it, reads stdout and stderr to EOF, waits,
// and returns both outputs. Cancelling a wait() or a communicate() only stops that wait: the child runs on, nothing
// it wrote is lost (a later read or communicate gets it), and the Process can still be signalled and waited for.
//
// Lifetimes: a Process is a move-only handle; its coroutines keep what they need alive, so a Process may even go
// while one of them is suspended. Destroying a Process whose child still runs kills the child
// (SIGKILL, as closing asyncio's transport does); the library still reaps it. All on the loop's thread.
#pragma once

#include <concepts>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tulipa/bytes.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/subprocess.hpp"

namespace tulipa {

namespace detail {
struct ProcessState;
}  // namespace detail

struct CommunicateResult {
  Bytes std_out{};  // empty when stdout is not a pipe
  Bytes std_err{};  // empty when stderr is not a pipe
};

class Process {
 public:
  Process(Process&&) noexcept = default;
  Process& operator=(Process&&) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // Kills the child if it still runs (see Lifetimes).
  ~Process();

  int pid() const noexcept;
  // nullopt until wait() would return (the child exited and its pipes are closed); then the exit status, or -N
  // when signal N ended it.
  std::optional<int> returncode() const noexcept;

  // The pipes' streams (null when not a pipe). Copies of the handles may be kept; they refer to the same stream.
  StreamWriter* std_in() noexcept { return in_ ? &*in_ : nullptr; }
  StreamReader* std_out() noexcept { return out_ ? &*out_ : nullptr; }
  StreamReader* std_err() noexcept { return err_ ? &*err_ : nullptr; }

  // The return code, once the child exited and its pipes are closed.
  Coro<int> wait();
  // Writes `input` (copied before the first suspension) to stdin and closes it (input given without a stdin pipe
  // throws std::logic_error), reads stdout and stderr to EOF, then waits for the exit. A child that stops reading
  // stdin early is not an error (as asyncio).
  Coro<CommunicateResult> communicate(std::span<const std::byte> input = {});
  Coro<CommunicateResult> communicate(std::string_view input) {
    return communicate(std::as_bytes(std::span(input.data(), input.size())));
  }

  // Signals the child; does nothing once it exited (see SubprocessTransport::send_signal).
  void send_signal(int signum);
  void terminate();
  void kill();

 private:
  friend Coro<Process> create_subprocess_exec(std::vector<std::string>, SubprocessOptions);
  friend Coro<Process> create_subprocess_shell(std::string, SubprocessOptions);
  friend Process spawn_process(EventLoop&, std::vector<std::string>, SubprocessOptions);
  explicit Process(std::shared_ptr<detail::ProcessState> st);
  std::shared_ptr<detail::ProcessState> st_;
  std::optional<StreamWriter> in_;
  std::optional<StreamReader> out_, err_;
};

// Starts argv[0] (see subprocess_exec for the errors, thrown from the co_await). On the running loop.
// A braced argv inside a co_await does not compile with g++ 12 (docs/coroutines.md, "g++ 12"): name it first
// (`std::vector<std::string> argv{"ls", "-l"};`) or pass the arguments one by one (below). Braced SubprocessOptions
// are fine.
Coro<Process> create_subprocess_exec(std::vector<std::string> argv, SubprocessOptions options);
// Starts `/bin/sh -c command`, in a process group of its own that every signal (terminate, kill, the kill at
// cancellation or destruction) goes to, so what the shell started dies with it: see
// SubprocessOptions::shell_process_group (false: asyncio's behaviour, the shell alone).
Coro<Process> create_subprocess_shell(std::string command, SubprocessOptions options);
// With the default options (overloads rather than default arguments: docs/coroutines.md, "g++ 12").
Coro<Process> create_subprocess_exec(std::vector<std::string> argv);
Coro<Process> create_subprocess_shell(std::string command);
// asyncio's create_subprocess_exec(program, *args): the arguments one by one, so that no braced list sits in the
// co_await (g++ 12), with the options first when there are any:
//   Process p = co_await create_subprocess_exec("ls", "-l", dir);
//   Process q = co_await create_subprocess_exec(SubprocessOptions().with_stdout(Stdio::pipe()), "ls", "-l");
template <class... Args>
  requires(std::convertible_to<const Args&, std::string_view> && ...)
Coro<Process> create_subprocess_exec(SubprocessOptions options, std::string_view program, const Args&... args) {
  std::vector<std::string> argv;
  argv.reserve(1 + sizeof...(Args));
  argv.emplace_back(program);
  (argv.emplace_back(std::string_view(args)), ...);
  return create_subprocess_exec(std::move(argv), options);
}
template <class... Args>
  requires(std::convertible_to<const Args&, std::string_view> && ...)
Coro<Process> create_subprocess_exec(std::string_view program, const Args&... args) {
  return create_subprocess_exec(SubprocessOptions{}, program, args...);
}
// The same without a coroutine, on a given loop: the child is running when this returns.
Process spawn_process(EventLoop& loop, std::vector<std::string> argv, SubprocessOptions options = {});

}  // namespace tulipa
