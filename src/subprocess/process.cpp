// Process and create_subprocess_exec/shell (process.hpp): a SubprocessProtocol that feeds the pipes' streams
// (asyncio's SubprocessStreamProtocol).
#include <signal.h>

#include <stdexcept>
#include <utility>

#include "streams/stream_reader_protocol.hpp"
#include "subprocess/pipe_stream_transport.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/process.hpp"
#include "tulipa/task.hpp"

namespace tulipa {
namespace detail {

// What a Process, its coroutines and its protocol share. The protocol (owned by the subprocess transport) holds it
// until connection_lost, which comes after every pipe was lost, so the pipe adapters here outlive their streams'
// attachment to them.
struct ProcessState {
  explicit ProcessState(EventLoop& l) noexcept : loop(&l) {}

  EventLoop* loop;
  SubprocessTransport* transport = nullptr;  // null after connection_lost (the transport is gone)
  int pid = -1;
  std::optional<int> returncode;  // set by process_exited
  std::vector<Future<int>> exit_waiters;
  PipeStreamTransport pipes[3];  // the streams' transports for the child's fds 0, 1, 2 (attached when a pipe)
  bool has_pipe[3] = {false, false, false};
  bool stdin_closed = false;  // communicate() closed it
  std::size_t limit = stream_default_limit;
};

namespace {

class ProcessProtocol final : public SubprocessProtocol {
 public:
  explicit ProcessProtocol(std::shared_ptr<ProcessState> st) noexcept : st_(std::move(st)) {}

  void connection_made(SubprocessTransport& t) override {
    st_->transport = &t;
    st_->pid = t.get_pid();
    if (st_->has_pipe[0]) st_->pipes[0].attach(*st_->loop, nullptr, t.get_stdin_transport(), st_->limit);
    if (st_->has_pipe[1]) st_->pipes[1].attach(*st_->loop, t.get_stdout_transport(), nullptr, st_->limit);
    if (st_->has_pipe[2]) st_->pipes[2].attach(*st_->loop, t.get_stderr_transport(), nullptr, st_->limit);
  }
  void pipe_data_received(int fd, std::span<const std::byte> data) override {
    if (StreamReaderProtocol* c = st_->pipes[fd].connection()) c->feed(data);
  }
  void pipe_connection_lost(int fd, std::exception_ptr exc) override { st_->pipes[fd].detach(std::move(exc)); }
  void pause_writing() override {
    if (StreamReaderProtocol* c = st_->pipes[0].connection()) c->pause_writing();
  }
  void resume_writing() override {
    if (StreamReaderProtocol* c = st_->pipes[0].connection()) c->resume_writing();
  }
  void process_exited() override {
    st_->returncode = st_->transport->get_returncode();
    for (auto& w : st_->exit_waiters) w.try_set_result(*st_->returncode);
    st_->exit_waiters.clear();
  }
  void connection_lost(std::exception_ptr) override { st_->transport = nullptr; }

 private:
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

Coro<Bytes> read_to_eof(StreamReader r) { co_return co_await r.read(-1); }

Coro<CommunicateResult> communicate_impl(std::shared_ptr<ProcessState> st, std::optional<StreamWriter> in,
                                         std::optional<StreamReader> out, std::optional<StreamReader> err,
                                         std::span<const std::byte> input) {
  if (!input.empty()) {
    if (!in) throw std::logic_error("Process::communicate: input given but stdin is not a pipe");
    if (st->stdin_closed) throw std::logic_error("Process::communicate: input given but stdin is closed already");
  }
  if (in && !st->stdin_closed) {
    st->stdin_closed = true;
    // The transport takes what the pipe holds and buffers the rest (copied now: `input` may go after this line);
    // close() flushes it, then closes. A child that stops reading breaks the pipe: the rest is dropped, which
    // communicate() does not report (asyncio ignores BrokenPipeError there too).
    if (!input.empty()) in->write(input);
    in->close();
  }
  // stdout and stderr are read at the same time (stderr in a task of its own), or a child writing much to the
  // one we are not reading would fill that pipe and never finish the other.
  Task<Bytes> err_task;
  if (err) err_task = create_task(*st->loop, read_to_eof(*err), "communicate-stderr");
  struct CancelOnUnwind {  // a cancelled communicate() leaves no reader behind (its read keeps the data buffered)
    Task<Bytes>& t;
    ~CancelOnUnwind() {
      if (t && !t.done()) t.cancel();
    }
  } guard{err_task};
  CommunicateResult r;
  if (out) r.std_out = co_await out->read(-1);
  if (err) r.std_err = co_await std::move(err_task);
  co_await wait_exit(st);
  co_return r;
}

}  // namespace
}  // namespace detail

Process::Process(std::shared_ptr<detail::ProcessState> st) : st_(std::move(st)) {
  for (int fd = 0; fd < 3; ++fd) {
    detail::StreamReaderProtocol* c = st_->pipes[fd].connection();
    if (!c) continue;
    c->retain();  // the handle's reference
    if (fd == 0) {
      in_.emplace(detail::StreamAccess::writer(c));
    } else {
      (fd == 1 ? out_ : err_).emplace(detail::StreamAccess::reader(c));
    }
  }
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
  return detail::communicate_impl(st_, in_, out_, err_, input);
}

void Process::send_signal(int signum) {
  if (st_->transport) st_->transport->send_signal(signum);
}
void Process::terminate() { send_signal(SIGTERM); }
void Process::kill() { send_signal(SIGKILL); }

namespace {
// A Process's state for a child about to be spawned with `options`.
std::shared_ptr<detail::ProcessState> process_state(EventLoop& loop, const SubprocessOptions& options) {
  detail::StreamReaderProtocol::check_limit(options.limit);  // std::invalid_argument before anything is spawned
  auto st = std::make_shared<detail::ProcessState>(loop);
  st->limit = options.limit;
  st->has_pipe[0] = options.std_in.kind() == Stdio::Kind::pipe;
  st->has_pipe[1] = options.std_out.kind() == Stdio::Kind::pipe;
  st->has_pipe[2] = options.std_err.kind() == Stdio::Kind::pipe;
  return st;
}
}  // namespace

Process spawn_process(EventLoop& loop, std::vector<std::string> argv, SubprocessOptions options) {
  auto st = process_state(loop, options);
  subprocess_exec(loop, std::make_unique<detail::ProcessProtocol>(st), std::move(argv), options);
  return Process(std::move(st));
}

Coro<Process> create_subprocess_exec(std::vector<std::string> argv, SubprocessOptions options) {
  co_return spawn_process(get_running_loop(), std::move(argv), std::move(options));
}

Coro<Process> create_subprocess_shell(std::string command, SubprocessOptions options) {
  // subprocess_shell: the shell in a process group of its own (SubprocessOptions::shell_process_group).
  EventLoop& loop = get_running_loop();
  auto st = process_state(loop, options);
  subprocess_shell(loop, std::make_unique<detail::ProcessProtocol>(st), command, options);
  co_return Process(std::move(st));
}

Coro<Process> create_subprocess_exec(std::vector<std::string> argv) {
  return create_subprocess_exec(std::move(argv), SubprocessOptions{});
}

Coro<Process> create_subprocess_shell(std::string command) {
  return create_subprocess_shell(std::move(command), SubprocessOptions{});
}

}  // namespace tulipa
