// ChildWatch: learns, without blocking the loop, that one child of ours exited, and reaps exactly that child.
//
// pidfd mode (Linux >= 5.3): pidfd_open(pid) right after the spawn (a zombie still has a pidfd, so an early exit is
// not missed); the loop polls the pidfd, which becomes readable when the child exits; waitid(P_PIDFD) reaps it.
// Nothing process-wide is touched, so other code may wait for its own children as it likes.
//
// SIGCHLD mode (no pidfds): the loop's SIGCHLD handler (installed while this loop has children) calls
// waitpid(pid, WNOHANG) for each pid it started and for nothing else, so other children of the process are left
// to whoever started them. One loop per process can use this mode (the loop's signal handling says so).
//
// The mode is probed once per process; tests can force SIGCHLD mode.
#pragma once

#include "tulipa/loop.hpp"

namespace tulipa::detail {

class ChildExitListener {
 public:
  // The child was reaped; `returncode` is the exit status, or -signal. Called in the loop's poll phase or from a
  // loop callback; the listener must not destroy its ChildWatch from here.
  virtual void child_exited(int returncode) = 0;

 protected:
  ~ChildExitListener() = default;
};

enum class ChildWatchMode { automatic, pidfd, sigchld };
// For tests: forces a mode for watches started from now on (automatic: probe). pidfd throws std::system_error if
// the kernel has no pidfds.
void set_child_watch_mode(ChildWatchMode mode);
ChildWatchMode child_watch_mode() noexcept;  // what new watches use (never automatic)

class ChildWatch final : public IoWatcher {
 public:
  ChildWatch() noexcept = default;
  ChildWatch(const ChildWatch&) = delete;
  ChildWatch& operator=(const ChildWatch&) = delete;
  // Stops watching (the child is then not reaped by us: only for a loop being torn down).
  ~ChildWatch();

  // Starts watching `pid`, a child this process spawned and nobody reaped. On failure (EMFILE for the pidfd, ...)
  // throws std::system_error; the caller then kills and reaps the child itself (reap_blocking).
  void start(EventLoop& loop, int pid, ChildExitListener* listener);
  bool reaped() const noexcept { return reaped_; }
  int pid() const noexcept { return pid_; }
  // Sends a signal unless the child was reaped already (then its pid may be another process's): false then.
  // `group`: to the child's whole process group (the child leads it: its pid is the group's id, which cannot be
  // reused while the child is not reaped).
  bool send_signal(int signum, bool group = false);

  // Kills (SIGKILL) and reaps a child that could not be watched; blocks for as long as the kernel takes to end it.
  static void kill_and_reap(int pid) noexcept;
  // Waits (blocking) for the child to exit and reaps it, then tells the listener as a reap from the loop would.
  // For a loop that is closing, after the child was sent SIGKILL. Nothing if reaped already.
  void reap_blocking() noexcept;

  void on_io(Events ready) override;  // pidfd readable

 private:
  friend struct SigchldRegistry;
  // Non-blocking reap attempt; true (and the listener told) if the child was reaped.
  bool try_reap();
  void finish(int returncode);

  EventLoop* loop_ = nullptr;
  ChildExitListener* listener_ = nullptr;
  int pid_ = -1;
  int pidfd_ = -1;  // -1 in SIGCHLD mode
  bool reaped_ = false;
  bool in_registry_ = false;
};

}  // namespace tulipa::detail
