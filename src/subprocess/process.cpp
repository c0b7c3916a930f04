// Process and create_subprocess_exec/shell (process.hpp): a SubprocessProtocol that feeds the shared ProcessState.
#include <signal.h>

#include <stdexcept>
#include <utility>

#include "subprocess/process_state.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/process.hpp"

namespace tulipa {
namespace detail {
namespace {

class ProcessProtocol final : public SubprocessProtocol {
 public:
  explicit ProcessProtocol(std::shared_ptr<ProcessState> st) noexcept : st_(std::move(st)) {}

  void connection_made(SubprocessTransport& t) override {
    st_->transport = &t;
    st_->pid = t.get_pid();
    st_->in = t.get_stdin_transport();
    if (st_->out) st_->out->transport = t.get_stdout_transport();
    if (st_->err) st_->err->transport = t.get_stderr_transport();
  }
  void pipe_data_received(int fd, std::span<const std::byte> data) override { reader(fd).feed(data); }
  void pipe_connection_lost(int fd, std::exception_ptr exc) override {
    if (fd == 0) {
      st_->in = nullptr;
      st_->in_lost = true;
      st_->in_error = exc;
      ProcessState::wake_all(st_->drain_waiters);  // drain() then reports the loss
      ProcessState::wake_all(st_->closed_waiters);
      return;
    }
    if (exc) {
      reader(fd).set_error(std::move(exc));
    } else {
      reader(fd).feed_eof();
    }
  }
  void pause_writing() override { st_->write_paused = true; }
  void resume_writing() override {
    st_->write_paused = false;
    ProcessState::wake_all(st_->drain_waiters);
  }
  void process_exited() override {
    st_->returncode = st_->transport->get_returncode();
    for (auto& w : st_->exit_waiters) w.try_set_result(*st_->returncode);
    st_->exit_waiters.clear();
  }
  void connection_lost(std::exception_ptr) override { st_->transport = nullptr; }

 private:
  PipeReaderCore& reader(int fd) { return fd == 1 ? *st_->out : *st_->err; }
  std::shared_ptr<ProcessState> st_;
};

Coro<int> wait_exit(std::shared_ptr<ProcessState> st) {
  if (st->returncode) co_return *st->returncode;
  // A future per call, as asyncio: cancelling one wait() cancels only its own future.
  std::erase_if(st->exit_waiters, [](const Future<int>& f) { return f.done(); });
  Future<int> f(*st->loop);
  st->exit_waiters.push_back(f);
  co_return co_await f;
}

Coro<Bytes> read_all(std::shared_ptr<PipeReaderCore> c) {
  PipeReaderCore::ReadingAll all(*c);
  while (!c->eof) co_await c->wait();
  if (c->error) std::rethrow_exception(c->error);
  co_return c->take(c->size());
}

Coro<CommunicateResult> communicate_impl(std::shared_ptr<ProcessState> st, std::span<const std::byte> input) {
  if (!input.empty()) {
    if (!st->has_stdin) throw std::logic_error("Process::communicate: input given but stdin is not a pipe");
    if (st->in_closed) throw std::logic_error("Process::communicate: input given but stdin is closed already");
  }
  if (st->has_stdin && !st->in_closed) {
    st->in_closed = true;
    // The transport takes what the pipe holds and buffers the rest (copied now: `input` may go after this line);
    // if the child stops reading, the pipe breaks and the rest is dropped, which communicate() does not report.
    if (st->in) {
      if (!input.empty()) st->in->write(input);
      st->in->close();
    }
  }
  // Reading one pipe to EOF while the other fills up must not stall the child: communicate reads everything, so
  // neither pipe is paused from now on.
  if (st->out) st->out->set_unbounded();
  if (st->err) st->err->set_unbounded();
  CommunicateResult r;
  if (st->out) r.std_out = co_await read_all(st->out);
  if (st->err) r.std_err = co_await read_all(st->err);
  co_await wait_exit(st);
  co_return r;
}

}  // namespace
}  // namespace detail

Process::Process(std::shared_ptr<detail::ProcessState> st) : st_(std::move(st)) {
  if (st_->has_stdin) in_.emplace(PipeWriter(st_));
  if (st_->out) out_.emplace(PipeReader(st_->out));
  if (st_->err) err_.emplace(PipeReader(st_->err));
}

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    if (st_ && st_->transport) st_->transport->close();
    st_ = std::move(o.st_);
    in_ = std::move(o.in_);
    out_ = std::move(o.out_);
    err_ = std::move(o.err_);
  }
  return *this;
}

Process::~Process() {
  // Kills a child that still runs and closes our pipe ends; the transport goes on until the child is reaped.
  if (st_ && st_->transport) st_->transport->close();
}

int Process::pid() const noexcept { return st_->pid; }
std::optional<int> Process::returncode() const noexcept { return st_->returncode; }

Coro<int> Process::wait() { return detail::wait_exit(st_); }

Coro<CommunicateResult> Process::communicate(std::span<const std::byte> input) {
  return detail::communicate_impl(st_, input);
}

void Process::send_signal(int signum) {
  if (st_->transport) st_->transport->send_signal(signum);
}
void Process::terminate() { send_signal(SIGTERM); }
void Process::kill() { send_signal(SIGKILL); }

Process spawn_process(EventLoop& loop, std::vector<std::string> argv, SubprocessOptions options) {
  auto st = std::make_shared<detail::ProcessState>(loop);
  st->has_stdin = options.std_in.kind() == Stdio::Kind::pipe;
  if (options.std_out.kind() == Stdio::Kind::pipe) st->out = std::make_shared<detail::PipeReaderCore>(loop);
  if (options.std_err.kind() == Stdio::Kind::pipe) st->err = std::make_shared<detail::PipeReaderCore>(loop);
  subprocess_exec(loop, std::make_unique<detail::ProcessProtocol>(st), std::move(argv), std::move(options));
  return Process(std::move(st));
}

Coro<Process> create_subprocess_exec(std::vector<std::string> argv, SubprocessOptions options) {
  co_return spawn_process(get_running_loop(), std::move(argv), std::move(options));
}

Coro<Process> create_subprocess_shell(std::string command, SubprocessOptions options) {
  // No braced list here: g++ 12 miscompiles an initializer_list inside a coroutine body (see process.hpp).
  std::vector<std::string> argv;
  argv.reserve(3);
  argv.emplace_back("/bin/sh");
  argv.emplace_back("-c");
  argv.push_back(std::move(command));
  co_return spawn_process(get_running_loop(), std::move(argv), std::move(options));
}

Coro<Process> create_subprocess_exec(std::vector<std::string> argv) {
  return create_subprocess_exec(std::move(argv), SubprocessOptions{});
}

Coro<Process> create_subprocess_shell(std::string command) {
  return create_subprocess_shell(std::move(command), SubprocessOptions{});
}

}  // namespace tulipa
