// SubprocessTransportImpl: one child process, its ChildWatch and its pipe transports, feeding a SubprocessProtocol
// (asyncio's BaseSubprocessTransport). It finishes (process_exited, connection_lost, then delete this) once the
// child was reaped and every pipe was lost, in that order, from one loop callback (a LostCall, net/lost_call.hpp).
//
// A loop closed first still ends it, so that neither the transport nor what its protocol holds (a Process's state)
// outlives the loop: the loop's live children (live_children.hpp) call end_at_loop_close(), which kills a child still
// running and reaps it; the pipes end in the loop's watcher phase (IoWatcher::on_loop_close), and the pending
// callbacks the loop then drops run their step all the same, down to connection_lost.
#pragma once

#include <exception>
#include <memory>
#include <optional>

#include "subprocess/child_watcher.hpp"
#include "subprocess/pipe_transport.hpp"
#include "tulipa/subprocess.hpp"

namespace tulipa::detail {

class SubprocessTransportImpl final : public SubprocessTransport, public ChildExitListener, public PipeOwner {
 public:
  // Spawns the child, starts watching it and its pipes, calls connection_made. See subprocess_exec.
  // `signal_group`: the child leads its own process group, and signals go to the group (a shell's, see
  // SubprocessOptions::shell_process_group).
  static SubprocessTransportImpl& start(EventLoop& loop, std::unique_ptr<SubprocessProtocol> protocol,
                                        const std::vector<std::string>& argv, const SubprocessOptions& options,
                                        bool signal_group = false);

  int get_pid() const noexcept override { return pid_; }
  std::optional<int> get_returncode() const noexcept override { return returncode_; }
  WriteTransport* get_stdin_transport() noexcept override { return stdin_.get(); }
  ReadTransport* get_stdout_transport() noexcept override { return stdout_.get(); }
  ReadTransport* get_stderr_transport() noexcept override { return stderr_.get(); }
  void send_signal(int signum) override;
  void close() override;
  bool is_closing() const noexcept override { return closed_; }
  EventLoop& get_loop() const noexcept override { return *loop_; }
  SubprocessProtocol& get_protocol() const noexcept override { return *protocol_; }

  // ChildExitListener
  void child_exited(int returncode) override;
  // PipeOwner
  void pipe_data(int child_fd, std::span<const std::byte> data) override;
  void pipe_lost(int child_fd, std::exception_ptr exc) override;
  void pipe_pause_writing() override;
  void pipe_resume_writing() override;

  // The loop is closing (its live-children extension, before the watchers are told): a child not reaped yet is
  // killed (its group too, as send_signal would) and reaped at once.
  void end_at_loop_close() noexcept;

 private:
  friend struct std::default_delete<SubprocessTransportImpl>;  // start()'s guard until the child is watched
  SubprocessTransportImpl(EventLoop& loop, std::unique_ptr<SubprocessProtocol> protocol) noexcept;
  ~SubprocessTransportImpl();
  // A protocol method threw: report it, close (kill the child), and hand the error to connection_lost.
  void protocol_error(const char* method, std::exception_ptr exc);
  void try_finish();
  // The last step (try_finish's LostCall): process_exited, connection_lost(exc or what process_exited threw),
  // delete this. `exc`: the first exception a protocol method threw (error_ when scheduled).
  void call_connection_lost(std::exception_ptr exc);
  template <class>
  friend class LostCall;

  EventLoop* loop_;
  std::unique_ptr<SubprocessProtocol> protocol_;
  std::unique_ptr<WritePipeTransport> stdin_;
  std::unique_ptr<ReadPipeTransport> stdout_;
  std::unique_ptr<ReadPipeTransport> stderr_;
  ChildWatch child_;
  std::exception_ptr error_;  // the first exception a protocol method threw, for connection_lost
  std::optional<int> returncode_;
  int pid_ = -1;
  int pipes_open_ = 0;  // pipes whose pipe_lost has not run yet
  bool closed_ = false;
  bool signal_group_ = false;  // signals go to the child's process group (start()'s signal_group)
  bool finishing_ = false;
};

}  // namespace tulipa::detail
