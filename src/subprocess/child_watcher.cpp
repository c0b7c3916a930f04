#include "subprocess/child_watcher.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>
#include <utility>
#include <vector>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace tulipa::detail {
namespace {

int pidfd_open(int pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int returncode_of(const siginfo_t& info) noexcept {
  // CLD_KILLED / CLD_DUMPED: si_status is the signal; CLD_EXITED: the exit status.
  return info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
}

int returncode_of_status(int status) noexcept {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return status;  // not reached for WEXITED waits
}

// 0: not probed yet; then the ChildWatchMode in use.
std::atomic<int> g_mode{0};

ChildWatchMode probe() noexcept {
  // pidfd_open of our own pid succeeds on kernels that have pidfds; ENOSYS (or a seccomp EPERM) means they are
  // not usable.
  int fd = pidfd_open(static_cast<int>(::getpid()));
  if (fd < 0) return ChildWatchMode::sigchld;
  ::close(fd);
  return ChildWatchMode::pidfd;
}

}  // namespace

void set_child_watch_mode(ChildWatchMode mode) {
  if (mode == ChildWatchMode::automatic) mode = probe();
  if (mode == ChildWatchMode::pidfd && probe() != ChildWatchMode::pidfd)
    throw std::system_error(ENOSYS, std::generic_category(), "pidfd_open");
  g_mode.store(static_cast<int>(mode));
}

ChildWatchMode child_watch_mode() noexcept {
  int m = g_mode.load(std::memory_order_relaxed);
  if (m == 0) {
    m = static_cast<int>(probe());
    g_mode.store(m);
  }
  return static_cast<ChildWatchMode>(m);
}

// --------------------------------------------------------------------------- SIGCHLD mode

// The watches of the loops of this thread that use SIGCHLD mode (in practice one loop: SIGCHLD goes to one loop per
// process). The loop's SIGCHLD handler is installed with the first watch and removed, from a later callback (never
// from inside the handler, which the loop is still running), once no watch is left.
struct SigchldRegistry {
  struct Entry {
    EventLoop* loop;
    std::vector<ChildWatch*> watches;
  };
  std::vector<Entry> entries;  // one per loop that has children right now

  static SigchldRegistry& local() {
    thread_local SigchldRegistry r;
    return r;
  }
  Entry* find(EventLoop* loop) {
    for (auto& e : entries)
      if (e.loop == loop) return &e;
    return nullptr;
  }

  void add(ChildWatch* w) {
    EventLoop* loop = w->loop_;
    if (!find(loop)) {
      // Installed before the entry exists, so that a refusal (another loop handles SIGCHLD) leaves nothing behind.
      loop->add_signal_handler(SIGCHLD, [loop] { local().poll(loop); });
      entries.push_back(Entry{loop, {}});
    }
    find(loop)->watches.push_back(w);
    w->in_registry_ = true;
    // The child may have exited before the handler was installed: look once in any case.
    loop->call_soon([loop] { local().poll(loop); });
  }

  // The entry goes at once (so a loop later created at the same address starts afresh); the handler is removed
  // from a later callback, never from inside the SIGCHLD handler the loop may be running right now.
  void remove(ChildWatch* w) {
    w->in_registry_ = false;
    EventLoop* loop = w->loop_;
    Entry* e = find(loop);
    if (!e) return;
    std::erase(e->watches, w);
    if (!e->watches.empty()) return;
    std::erase_if(entries, [loop](const Entry& x) { return x.loop == loop; });
    if (!loop->is_closed())
      loop->call_soon([loop] {
        if (!local().find(loop)) loop->remove_signal_handler(SIGCHLD);
      });
  }

  void poll(EventLoop* loop) {
    Entry* e = find(loop);
    if (!e) return;
    // Collect first: telling a listener may start or end other watches.
    std::vector<std::pair<ChildWatch*, int>> done;
    for (ChildWatch* w : e->watches) {
      int status = 0;
      pid_t r = ::waitpid(w->pid_, &status, WNOHANG);
      if (r == w->pid_)
        done.emplace_back(w, returncode_of_status(status));
      else if (r < 0 && errno == ECHILD)
        done.emplace_back(w, 255);  // someone else reaped it: the status is lost
    }
    for (auto& [w, rc] : done) {
      remove(w);
      w->finish(rc);
    }
  }
};

// --------------------------------------------------------------------------- ChildWatch

ChildWatch::~ChildWatch() {
  if (pidfd_ >= 0) {
    if (loop_ && !reaped_) loop_->unwatch(pidfd_);
    ::close(pidfd_);
  }
  if (in_registry_) SigchldRegistry::local().remove(this);
}

void ChildWatch::start(EventLoop& loop, int pid, ChildExitListener* listener) {
  loop_ = &loop;
  pid_ = pid;
  listener_ = listener;
  if (child_watch_mode() == ChildWatchMode::pidfd) {
    int fd = pidfd_open(pid);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "pidfd_open");
    pidfd_ = fd;
    loop.watch(pidfd_, Events::read, this);
  } else {
    SigchldRegistry::local().add(this);
  }
}

void ChildWatch::on_io(Events) { try_reap(); }

bool ChildWatch::try_reap() {
  if (reaped_) return true;
  siginfo_t info{};
  int r = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info, WEXITED | WNOHANG);
  if (r == 0 && info.si_pid != 0) {
    finish(returncode_of(info));
    return true;
  }
  if (r == 0 || errno == EINTR) return false;  // readable without an exit: spurious, wait for the next one
  if (errno == EINVAL) {
    // Kernel 5.3 has pidfd_open but no waitid(P_PIDFD): the pidfd still told us it exited, and the pid cannot be
    // recycled before we reap it, so waitpid on it is exact.
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      finish(returncode_of_status(status));
      return true;
    }
    return false;
  }
  finish(255);  // ECHILD: another part of the process reaped our child (waitpid(-1)); its status is lost
  return true;
}

void ChildWatch::finish(int returncode) {
  reaped_ = true;
  if (pidfd_ >= 0) {
    loop_->unwatch(pidfd_);
    ::close(pidfd_);
    pidfd_ = -1;
  }
  listener_->child_exited(returncode);
}

bool ChildWatch::send_signal(int signum, bool group) {
  if (reaped_) return false;
  int r;
  if (group) {
    r = ::kill(-pid_, signum);
  } else if (pidfd_ >= 0) {
    r = static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd_, signum, nullptr, 0));
  } else {
    r = ::kill(pid_, signum);
  }
  if (r != 0) {
    if (errno == ESRCH) return false;  // exited, not reaped yet... cannot happen for a zombie, but harmless
    throw std::system_error(errno, std::generic_category(), "send_signal(" + std::to_string(signum) + ")");
  }
  return true;
}

void ChildWatch::reap_blocking() noexcept {
  if (reaped_ || pid_ < 0) return;
  if (in_registry_) SigchldRegistry::local().remove(this);
  int rc = 255;  // ECHILD: another part of the process reaped it; its status is lost
  if (pidfd_ >= 0) {
    siginfo_t info{};
    int r;
    while ((r = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info, WEXITED)) < 0 &&
           errno == EINTR) {
    }
    if (r == 0) {
      rc = returncode_of(info);
    } else if (errno == EINVAL) {  // no waitid(P_PIDFD): see try_reap
      int status = 0;
      while ((r = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
      }
      if (r == pid_) rc = returncode_of_status(status);
    }
  } else {
    int status = 0;
    int r;
    while ((r = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r == pid_) rc = returncode_of_status(status);
  }
  finish(rc);
}

void ChildWatch::kill_and_reap(int pid) noexcept {
  ::kill(pid, SIGKILL);
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace tulipa::detail
