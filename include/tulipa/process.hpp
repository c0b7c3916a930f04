// Subprocesses with coroutines (asyncio.create_subprocess_exec / create_subprocess_shell and asyncio.subprocess's
// Process), on top of the low level in subprocess.hpp (whose notes on spawning, exit watching, SIGPIPE and the
// order of events hold here too).
//
//   tulipa::Process p = co_await tulipa::create_subprocess_exec({"sort"}, {.std_in = tulipa::Stdio::pipe(),
//                                                                          .std_out = tulipa::Stdio::pipe()});
//   auto [out, err] = co_await p.communicate("b\na\n");   // out == "a\nb\n"; p.returncode() == 0
//
// The pipes: std_in() is a PipeWriter, std_out() and std_err() are PipeReaders (null when that stream is not a
// pipe). They are the part of asyncio's StreamWriter/StreamReader a process needs, with the same flow control: a
// reader stops reading the pipe (so the child blocks writing) when more than 2 x 64 KiB wait unread, and
// resumes once no more than 64 KiB do.
// Deadlock warning, as in asyncio: wait() with a stdout or stderr pipe nobody reads never returns when the child
// writes more than that. Use communicate(), or read while waiting.
//
// wait() returns once the child exited and its pipes are closed, so all of its output is in the readers by then
// (asyncio 3.12). communicate(input) writes `input` to stdin and closes it, reads stdout and stderr to EOF, waits,
// and returns both outputs. Cancelling a wait() or a communicate() only stops that wait: the child runs on, nothing
// it wrote is lost (a later read or communicate gets it), and the Process can still be signalled and waited for.
//
// Lifetimes: a Process is a move-only handle; awaiting one of its coroutines requires the Process (and its pipe
// objects) to stay alive until the co_await finishes. Destroying a Process whose child still runs kills the child
// (SIGKILL, as closing asyncio's transport does); the library still reaps it. All on the loop's thread.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tulipa/bytes.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/subprocess.hpp"

namespace tulipa {

namespace detail {
struct ProcessState;
struct PipeReaderCore;
}  // namespace detail

// The read side of one of the child's output pipes (a subset of asyncio's StreamReader).
class PipeReader {
 public:
  // Up to n bytes (at least one unless at EOF: then empty). n < 0: everything until EOF.
  Coro<Bytes> read(std::ptrdiff_t n = -1);
  // One line with its '\n' (the last one may lack it; empty at EOF). A line longer than the limit (64 KiB) throws
  // std::length_error and drops the buffered data, as asyncio's readline does.
  Coro<Bytes> readline();
  // Exactly n bytes; at EOF before that throws std::runtime_error ("incomplete read"), the bytes staying buffered.
  Coro<Bytes> readexactly(std::size_t n);
  // True once EOF was seen and the buffer is empty.
  bool at_eof() const noexcept;
  // Bytes buffered, not read yet.
  std::size_t buffered() const noexcept;

  // Reads may not overlap: a second coroutine reading while one waits gets std::logic_error.
  // If the pipe failed (a read error), reads throw that error once the buffer is exhausted.

 private:
  friend class Process;
  friend struct detail::ProcessState;
  explicit PipeReader(std::shared_ptr<detail::PipeReaderCore> core) noexcept : core_(std::move(core)) {}
  std::shared_ptr<detail::PipeReaderCore> core_;
};

// The write side of the child's stdin (a subset of asyncio's StreamWriter).
class PipeWriter {
 public:
  // Copies what the pipe does not take at once into the transport's buffer (never blocks, never suspends).
  // After close() throws std::logic_error; once the child closed its stdin, data is dropped (drain() reports it).
  void write(std::span<const std::byte> data);
  void write(std::string_view data) { write(std::as_bytes(std::span(data.data(), data.size()))); }
  // Waits while the buffer is above its high-water mark (64 KiB). Throws the pipe's error (std::system_error
  // EPIPE) if the child stopped reading before everything was written, or std::system_error(ECONNRESET) if the
  // pipe is already gone.
  Coro<void> drain();
  // Flushes what is buffered, then closes the pipe: the child reads EOF. Idempotent.
  void close();
  void write_eof() { close(); }
  bool can_write_eof() const noexcept { return true; }
  bool is_closing() const noexcept;
  // Waits until the pipe is closed (after close(), once flushed; or when the child closed its end).
  Coro<void> wait_closed();
  std::size_t get_write_buffer_size() const noexcept;

 private:
  friend class Process;
  explicit PipeWriter(std::shared_ptr<detail::ProcessState> st) noexcept : st_(std::move(st)) {}
  std::shared_ptr<detail::ProcessState> st_;
};

struct CommunicateResult {
  Bytes std_out;  // empty when stdout is not a pipe
  Bytes std_err;  // empty when stderr is not a pipe
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

  PipeWriter* std_in() noexcept { return in_ ? &*in_ : nullptr; }
  PipeReader* std_out() noexcept { return out_ ? &*out_ : nullptr; }
  PipeReader* std_err() noexcept { return err_ ? &*err_ : nullptr; }

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
  std::optional<PipeWriter> in_;
  std::optional<PipeReader> out_, err_;
};

// Starts argv[0] (see subprocess_exec for the errors, thrown from the co_await). On the running loop.
// g++ 12 rejects a braced list in an expression that also has a co_await ("array used as initializer", a compiler
// bug): write `std::vector<std::string> argv{"ls", "-l"};` first, then `co_await create_subprocess_exec(argv)`,
// or use spawn_process, which needs no co_await.
Coro<Process> create_subprocess_exec(std::vector<std::string> argv, SubprocessOptions options);
// Starts `/bin/sh -c command`.
Coro<Process> create_subprocess_shell(std::string command, SubprocessOptions options);
// With the default options. (Overloads, not default arguments: g++ 12 corrupts a coroutine's parameter that comes
// from a default argument.)
Coro<Process> create_subprocess_exec(std::vector<std::string> argv);
Coro<Process> create_subprocess_shell(std::string command);
// The same without a coroutine, on a given loop: the child is running when this returns.
Process spawn_process(EventLoop& loop, std::vector<std::string> argv, SubprocessOptions options = {});

}  // namespace tulipa
