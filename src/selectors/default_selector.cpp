// make_default_selector: the platform's best backend, or the one TULIPA_SELECTOR names (to run a program, or the
// whole test suite, against another backend without rebuilding).
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tulipa/selector.hpp"

namespace tulipa {

std::unique_ptr<Selector> make_default_selector() {
  const char* env = std::getenv("TULIPA_SELECTOR");
  std::string_view choice = env != nullptr ? env : "";
  if (choice.empty()) return std::make_unique<DefaultSelector>();
  if (choice == "epoll") return make_epoll_selector();
  if (choice == "poll") return make_poll_selector();
  throw std::invalid_argument("TULIPA_SELECTOR must be 'epoll' or 'poll', not '" + std::string(choice) + "'");
}

}  // namespace tulipa
