// A program outside the tulipa tree, built against an installed tulipa by run_consumer.sh: once through
// find_package(tulipa) and once through pkg-config. It shows that the installed headers and library are complete.
#include <chrono>
#include <cstdio>
#include <vector>

#include "tulipa/loop.hpp"

int main() {
  using namespace std::chrono_literals;
  tulipa::EventLoop loop;
  std::vector<int> order;
  loop.call_soon([&] {
    order.push_back(1);
    loop.call_soon([&] {
      order.push_back(2);
      loop.call_later(1ms, [&] {
        order.push_back(3);
        loop.stop();
      });
    });
  });
  loop.run_forever();
  loop.close();
  if (order != std::vector<int>{1, 2, 3}) {
    std::fprintf(stderr, "tulipa consumer: callbacks ran %zu times, not in the order 1 2 3\n", order.size());
    return 1;
  }
  std::puts("tulipa consumer: ok");
  return 0;
}
