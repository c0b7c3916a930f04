#include "subprocess/subprocess_transport.hpp"
#include "loop/error_context.hpp"

#include <signal.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "net/lost_call.hpp"
#include "subprocess/live_children.hpp"
#include "subprocess/spawn.hpp"
#include "tulipa/loop.hpp"

namespace tulipa {

BaseTransport* SubprocessTransport::get_pipe_transport(int fd) noexcept {
  switch (fd) {
    case 0:
      return get_stdin_transport();
    case 1:
      return get_stdout_transport();
    case 2:
      return get_stderr_transport();
    default:
      return nullptr;
  }
}

void SubprocessTransport::terminate() { send_signal(SIGTERM); }
void SubprocessTransport::kill() { send_signal(SIGKILL); }

SubprocessTransport& subprocess_exec(EventLoop& loop, std::unique_ptr<SubprocessProtocol> protocol,
                                     std::vector<std::string> argv, SubprocessOptions options) {
  return detail::SubprocessTransportImpl::start(loop, std::move(protocol), argv, options);
}

SubprocessTransport& subprocess_shell(EventLoop& loop, std::unique_ptr<SubprocessProtocol> protocol,
                                      std::string_view command, SubprocessOptions options) {
  std::vector<std::string> argv{"/bin/sh", "-c", std::string(command)};
  const bool own_group = options.shell_process_group && !options.process_group && !options.start_new_session;
  if (own_group) options.process_group = 0;  // a new group, led by the shell
  return detail::SubprocessTransportImpl::start(loop, std::move(protocol), argv, options, own_group);
}

namespace detail {

SubprocessTransportImpl::SubprocessTransportImpl(EventLoop& loop, std::unique_ptr<SubprocessProtocol> protocol) noexcept
    : loop_(&loop), protocol_(std::move(protocol)) {}

SubprocessTransportImpl::~SubprocessTransportImpl() = default;

SubprocessTransportImpl& SubprocessTransportImpl::start(EventLoop& loop, std::unique_ptr<SubprocessProtocol> protocol,
                                                        const std::vector<std::string>& argv,
                                                        const SubprocessOptions& options, bool signal_group) {
  if (!protocol) throw std::invalid_argument("subprocess_exec: null protocol");
  if (loop.is_closed()) throw std::logic_error("subprocess_exec: the event loop is closed");
  SpawnedChild child = spawn_child(argv, options);
  std::unique_ptr<SubprocessTransportImpl> self(new SubprocessTransportImpl(loop, std::move(protocol)));
  self->pid_ = child.pid;
  self->signal_group_ = signal_group;
  // Until the pipes are adopted, they are closed on a throw by this guard; the child is killed and reaped.
  struct Guard {
    SpawnedChild* c;
    ~Guard() {
      if (!c) return;
      for (int& fd : c->fds)
        if (fd >= 0) ::close(fd);
      ChildWatch::kill_and_reap(c->pid);
    }
  } guard{&child};
  if (child.fds[0] >= 0)
    self->stdin_ = std::make_unique<WritePipeTransport>(loop, std::exchange(child.fds[0], -1), 0, *self);
  if (child.fds[1] >= 0)
    self->stdout_ = std::make_unique<ReadPipeTransport>(loop, std::exchange(child.fds[1], -1), 1, *self);
  if (child.fds[2] >= 0)
    self->stderr_ = std::make_unique<ReadPipeTransport>(loop, std::exchange(child.fds[2], -1), 2, *self);
  self->child_.start(loop, child.pid, self.get());
  if (self->stdin_) self->stdin_->start();
  if (self->stdout_) self->stdout_->start();
  if (self->stderr_) self->stderr_->start();
  guard.c = nullptr;
  self->pipes_open_ = int(bool(self->stdin_)) + int(bool(self->stdout_)) + int(bool(self->stderr_));
  track_child(loop, self.get());
  SubprocessTransportImpl& t = *self.release();  // owned by itself from here: call_connection_lost() deletes it
  try {
    t.protocol_->connection_made(t);
  } catch (...) {
    t.protocol_error("connection_made", std::current_exception());
  }
  return t;
}

void SubprocessTransportImpl::send_signal(int signum) { child_.send_signal(signum, signal_group_); }

void SubprocessTransportImpl::close() {
  if (closed_) return;
  closed_ = true;
  if (stdin_) stdin_->close();
  if (stdout_) stdout_->close();
  if (stderr_) stderr_->close();
  // As asyncio: a child still running when its transport is closed is killed; it is still reaped, and
  // process_exited/connection_lost still follow.
  if (!returncode_) child_.send_signal(SIGKILL, signal_group_);
}

void SubprocessTransportImpl::protocol_error(const char* method, std::exception_ptr exc) {
  if (!error_) error_ = exc;
  loop_->call_exception_handler(detail::error_context(
      std::string("Exception in SubprocessProtocol::") + method + " (pid " + std::to_string(pid_) + ")",
      std::move(exc)));
  if (stdin_) stdin_->abort();
  close();
}

void SubprocessTransportImpl::child_exited(int returncode) {
  returncode_ = returncode;
  try_finish();
}

void SubprocessTransportImpl::pipe_data(int child_fd, std::span<const std::byte> data) {
  try {
    protocol_->pipe_data_received(child_fd, data);
  } catch (...) {
    protocol_error("pipe_data_received", std::current_exception());
  }
}

void SubprocessTransportImpl::pipe_lost(int child_fd, std::exception_ptr exc) {
  --pipes_open_;
  try {
    protocol_->pipe_connection_lost(child_fd, std::move(exc));
  } catch (...) {
    protocol_error("pipe_connection_lost", std::current_exception());
  }
  try_finish();
}

void SubprocessTransportImpl::pipe_pause_writing() {
  try {
    protocol_->pause_writing();
  } catch (...) {
    protocol_error("pause_writing", std::current_exception());
  }
}

void SubprocessTransportImpl::pipe_resume_writing() {
  try {
    protocol_->resume_writing();
  } catch (...) {
    protocol_error("resume_writing", std::current_exception());
  }
}

void SubprocessTransportImpl::end_at_loop_close() noexcept {
  if (returncode_) return;
  // As close() does, but the loop will not run again to see the child go: it is killed and reaped now (SIGKILL
  // cannot be caught, so this waits only for the kernel to end it). The pipes end in the loop's watcher phase.
  try {
    child_.send_signal(SIGKILL, signal_group_);
  } catch (...) {
  }
  child_.reap_blocking();
}

void SubprocessTransportImpl::try_finish() {
  if (finishing_ || !returncode_ || pipes_open_ > 0) return;
  finishing_ = true;
  loop_->call_soon(LostCall<SubprocessTransportImpl>(this, error_));
}

void SubprocessTransportImpl::call_connection_lost(std::exception_ptr exc) {
  try {
    protocol_->process_exited();
  } catch (...) {
    std::exception_ptr thrown = std::current_exception();
    if (!exc) exc = thrown;
    loop_->call_exception_handler(detail::error_context(
        "Exception in SubprocessProtocol::process_exited (pid " + std::to_string(pid_) + ")", std::move(thrown)));
  }
  closed_ = true;
  try {
    protocol_->connection_lost(std::move(exc));
  } catch (...) {
    loop_->call_exception_handler(
        detail::error_context("Exception in SubprocessProtocol::connection_lost (pid " + std::to_string(pid_) + ")",
                              std::current_exception()));
  }
  untrack_child(*loop_, this);
  delete this;
}

}  // namespace detail
}  // namespace tulipa
