// make_selector / make_default_selector: the backend a loop runs on, chosen by the program (LoopOptions::backend)
// or by the environment (TULIPA_LOOP, to run a program or the whole test suite on another backend without
// rebuilding), with io_uring falling back to epoll where the kernel or a seccomp profile refuses it.
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "tulipa/selector.hpp"

namespace tulipa {

LoopBackend backend_from_environment() {
  const char* name = "TULIPA_LOOP";
  const char* env = std::getenv(name);
  if (env == nullptr || *env == '\0') {
    name = "TULIPA_SELECTOR";  // the older name, before the loop had a non-selector backend
    env = std::getenv(name);
  }
  std::string_view choice = env != nullptr ? env : "";
  if (choice.empty() || choice == "epoll") return LoopBackend::epoll;
  if (choice == "poll") return LoopBackend::poll;
  if (choice == "uring" || choice == "io_uring") return LoopBackend::uring;
  throw std::invalid_argument(std::string(name) + " must be 'uring', 'epoll' or 'poll', not '" + std::string(choice) +
                              "'");
}

std::unique_ptr<Selector> make_selector(LoopBackend backend, std::string* fallback_reason) {
  if (backend == LoopBackend::automatic) backend = backend_from_environment();
  switch (backend) {
    case LoopBackend::poll:
      return make_poll_selector();
    case LoopBackend::uring:
      try {
        return make_uring_selector();
      } catch (const std::system_error& e) {
        if (fallback_reason != nullptr) *fallback_reason = e.what();
      }
      return make_epoll_selector();
    default:
      return make_epoll_selector();
  }
}

std::unique_ptr<Selector> make_default_selector() { return make_selector(LoopBackend::automatic); }

}  // namespace tulipa
