// Signal handling for the loop: the classic self-pipe. A process-wide sigaction handler writes the signal number
// into the pipe of the loop that claimed that signal; the loop watches the pipe's read end and runs the user's
// handler as an ordinary callback. Chosen over signalfd because signalfd only sees signals blocked in every thread,
// which a library cannot guarantee for threads the application starts itself.
#pragma once

#include <csignal>
#include <unordered_map>

#include "tulipa/callback.hpp"

namespace tulipa::detail {

class SignalSet {
 public:
  SignalSet() = default;
  ~SignalSet();
  SignalSet(const SignalSet&) = delete;
  SignalSet& operator=(const SignalSet&) = delete;

  // Creates the pipe on first use. Throws std::invalid_argument for a bad or uncatchable signal, std::logic_error if
  // another loop in the process handles it.
  void add(int signum, Callback fn);
  bool remove(int signum);
  // The read end (-1 before the first add()).
  int read_fd() const noexcept { return pipe_[0]; }
  // Reads the pending signal numbers and calls `deliver(signum)` for each one that still has a handler.
  template <class F>
  void drain(F&& deliver);
  Callback* handler(int signum) {
    auto it = handlers_.find(signum);
    return it == handlers_.end() ? nullptr : &it->second;
  }
  bool empty() const noexcept { return handlers_.empty(); }
  void clear() noexcept;

 private:
  int read_some(unsigned char* buf, int cap) noexcept;
  std::unordered_map<int, Callback> handlers_;
  int pipe_[2] = {-1, -1};
};

template <class F>
void SignalSet::drain(F&& deliver) {
  unsigned char buf[64];
  int n;
  while ((n = read_some(buf, sizeof buf)) > 0)
    for (int i = 0; i < n; ++i)
      if (handlers_.count(buf[i])) deliver(int(buf[i]));
}

}  // namespace tulipa::detail
