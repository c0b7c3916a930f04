#include "loop/signals.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

namespace tulipa::detail {
namespace {

// The write end of the pipe of the loop that handles each signal, -1 for none. Read inside the signal handler, so
// it is a plain array of lock-free atomics.
std::atomic<int> g_signal_pipe[NSIG];
[[maybe_unused]] const bool g_init = [] {
  for (auto& fd : g_signal_pipe) fd.store(-1);
  return true;
}();

extern "C" void tulipa_on_signal(int signum) {
  const int saved_errno = errno;
  int fd = g_signal_pipe[signum].load(std::memory_order_relaxed);
  if (fd >= 0) {
    unsigned char b = static_cast<unsigned char>(signum);
    // If the pipe is full the signal is already pending there: a dropped byte is a coalesced signal, as the kernel
    // coalesces them too.
    [[maybe_unused]] ssize_t r = ::write(fd, &b, 1);
  }
  errno = saved_errno;
}

}  // namespace

SignalSet::~SignalSet() {
  clear();
  if (pipe_[0] >= 0) ::close(pipe_[0]);
  if (pipe_[1] >= 0) ::close(pipe_[1]);
}

void SignalSet::add(int signum, Callback fn) {
  if (signum <= 0 || signum >= NSIG || signum > 255)
    throw std::invalid_argument("add_signal_handler: invalid signal number " + std::to_string(signum));
  if (signum == SIGKILL || signum == SIGSTOP)
    throw std::invalid_argument("add_signal_handler: SIGKILL and SIGSTOP cannot be handled");
  if (pipe_[0] < 0 && ::pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "add_signal_handler: pipe2");
  int expected = -1;
  if (!g_signal_pipe[signum].compare_exchange_strong(expected, pipe_[1]) && expected != pipe_[1])
    throw std::logic_error("add_signal_handler: signal " + std::to_string(signum) +
                           " is handled by another event loop");
  struct sigaction sa{};
  sa.sa_handler = tulipa_on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // other system calls in the process are not disturbed; our selector copes with EINTR
  if (::sigaction(signum, &sa, nullptr) != 0) {
    int err = errno;
    g_signal_pipe[signum].store(-1);
    throw std::system_error(err, std::generic_category(), "add_signal_handler: sigaction");
  }
  handlers_.insert_or_assign(signum, std::move(fn));
}

bool SignalSet::remove(int signum) {
  auto it = handlers_.find(signum);
  if (it == handlers_.end()) return false;
  struct sigaction sa{};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  ::sigaction(signum, &sa, nullptr);
  g_signal_pipe[signum].store(-1);
  handlers_.erase(it);
  return true;
}

void SignalSet::clear() noexcept {
  while (!handlers_.empty()) remove(handlers_.begin()->first);
}

int SignalSet::read_some(unsigned char* buf, int cap) noexcept {
  if (pipe_[0] < 0) return 0;
  ssize_t n = ::read(pipe_[0], buf, static_cast<size_t>(cap));
  return n > 0 ? static_cast<int>(n) : 0;
}

}  // namespace tulipa::detail
