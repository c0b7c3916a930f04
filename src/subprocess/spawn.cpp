#include "subprocess/spawn.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>

namespace tulipa::detail {
namespace {

// Closes what it holds when the scope ends (the error paths).
struct FdList {
  int fds[8];
  int n = 0;
  void add(int fd) noexcept { fds[n++] = fd; }
  void close_all() noexcept {
    while (n > 0) ::close(fds[--n]);
  }
  ~FdList() { close_all(); }
};

void check_string(std::string_view s, const char* what) {
  if (s.find('\0') != std::string::npos)
    throw std::invalid_argument(std::string("subprocess: ") + what + " contains a NUL character");
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// The child's ends must not be 0, 1 or 2: the dup2 onto 0 would otherwise clobber the fd a later dup2 reads from.
int above_stdio(int fd, FdList& owned) {
  if (fd > 2) return fd;
  int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (high < 0) throw_errno(errno, "subprocess: fcntl(F_DUPFD_CLOEXEC)");
  owned.add(high);
  return high;
}

struct SpawnAttrs {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnAttrs() {
    if (int e = posix_spawn_file_actions_init(&actions)) throw_errno(e, "subprocess: posix_spawn_file_actions_init");
    if (int e = posix_spawnattr_init(&attr)) {
      posix_spawn_file_actions_destroy(&actions);
      throw_errno(e, "subprocess: posix_spawnattr_init");
    }
  }
  ~SpawnAttrs() {
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }
};

void check(int err, const char* what) {
  if (err) throw_errno(err, std::string("subprocess: ") + what);
}

}  // namespace

void ignore_sigpipe_once() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old{};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO)) {
      struct sigaction ign{};
      ign.sa_handler = SIG_IGN;
      sigemptyset(&ign.sa_mask);
      ::sigaction(SIGPIPE, &ign, nullptr);
    }
  });
}

SpawnedChild spawn_child(const std::vector<std::string>& argv, const SubprocessOptions& options) {
  if (argv.empty() || argv[0].empty()) throw std::invalid_argument("subprocess: empty program name");
  for (const auto& a : argv) check_string(a, "an argument");
  if (options.env)
    for (const auto& e : *options.env) {
      check_string(e, "an environment entry");
      if (e.find('=') == std::string::npos)
        throw std::invalid_argument("subprocess: environment entry '" + e + "' is not NAME=value");
    }
  const std::string cwd(options.cwd);  // NUL-terminated for posix_spawn
  check_string(cwd, "cwd");
  const Stdio stdio[3] = {options.std_in, options.std_out, options.std_err};
  for (int i = 0; i < 3; ++i) {
    if (stdio[i].kind() == Stdio::Kind::to_stdout && i != 2)
      throw std::invalid_argument("subprocess: Stdio::to_stdout() is only for stderr");
    if (stdio[i].kind() == Stdio::Kind::fd && stdio[i].fd() < 0)
      throw std::invalid_argument("subprocess: Stdio::from_fd(" + std::to_string(stdio[i].fd()) + ")");
  }

  SpawnAttrs sa;
  FdList child_ends;  // closed in any case once the child has its copies
  FdList ours;        // released to the caller on success
  int child_fd[3] = {-1, -1, -1};
  SpawnedChild result;
  for (int i = 0; i < 3; ++i) {
    switch (stdio[i].kind()) {
      case Stdio::Kind::pipe: {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) throw_errno(errno, "subprocess: pipe2");
        const int mine = i == 0 ? p[1] : p[0];
        const int theirs = i == 0 ? p[0] : p[1];
        ours.add(mine);
        child_ends.add(theirs);
        if (::fcntl(mine, F_SETFL, ::fcntl(mine, F_GETFL) | O_NONBLOCK) != 0) throw_errno(errno, "subprocess: fcntl");
        child_fd[i] = above_stdio(theirs, child_ends);
        result.fds[i] = mine;
        break;
      }
      case Stdio::Kind::fd:
        child_fd[i] = above_stdio(stdio[i].fd(), child_ends);
        break;
      default:
        break;
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (child_fd[i] >= 0) {
      check(posix_spawn_file_actions_adddup2(&sa.actions, child_fd[i], i), "adddup2");
    } else if (stdio[i].kind() == Stdio::Kind::devnull) {
      check(posix_spawn_file_actions_addopen(&sa.actions, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0), "addopen");
    }
  }
  if (stdio[2].kind() == Stdio::Kind::to_stdout) check(posix_spawn_file_actions_adddup2(&sa.actions, 1, 2), "adddup2");
  if (options.close_fds) check(posix_spawn_file_actions_addclosefrom_np(&sa.actions, 3), "addclosefrom_np");
  if (!cwd.empty()) check(posix_spawn_file_actions_addchdir_np(&sa.actions, cwd.c_str()), "addchdir_np");

  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGXFSZ);
  check(posix_spawnattr_setsigmask(&sa.attr, &none), "setsigmask");
  check(posix_spawnattr_setsigdefault(&sa.attr, &defaults), "setsigdefault");
  if (options.start_new_session) flags |= POSIX_SPAWN_SETSID;
  if (options.process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    check(posix_spawnattr_setpgroup(&sa.attr, *options.process_group), "setpgroup");
  }
  check(posix_spawnattr_setflags(&sa.attr, flags), "setflags");

  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  if (options.env) {
    cenv.reserve(options.env->size() + 1);
    for (const auto& e : *options.env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
  }

  pid_t pid = -1;
  // glibc runs the child with CLONE_VM|CLONE_VFORK and returns exec's errno (ENOENT, EACCES, ...) from here.
  int err = ::posix_spawnp(&pid, cargv[0], &sa.actions, &sa.attr, cargv.data(), options.env ? cenv.data() : environ);
  if (err != 0) {
    std::string what = "subprocess: cannot run '" + argv[0] + "'";
    if (!cwd.empty()) what += " in '" + cwd + "'";
    throw_errno(err, what);
  }
  ours.n = 0;  // released to the caller
  result.pid = pid;
  return result;
}

}  // namespace tulipa::detail
