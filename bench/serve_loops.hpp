// serve_on_loops: the --loops N mode of the benchmark servers (tulipa_echo, tulipa_http). N loops (a LoopGroup),
// each opening its own listener on the same port (the caller sets ServerOptions::reuse_port); prints "ready" once
// every loop listens, then serves until SIGTERM or SIGINT (handled on loop 0) stops them all.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <system_error>
#include <utility>

#include "tulipa/loop_group.hpp"

namespace serve_loops {

// open(loop, i) runs on loop i's thread and listens (it throws std::system_error when it cannot); close(loop, i)
// runs there at shutdown, while the loop still exists. Returns main()'s exit status: 0, or 1 when a loop could not
// listen (the reason on stderr, after `program`).
template <class Open, class Close>
int serve_on_loops(int n, const char* program, Open open, Close close) {
  std::atomic<int> listening{0}, failed{0};
  tulipa::LoopGroupOptions options;
  options.stop_on_signals = true;
  options.on_stop = [&](tulipa::EventLoop& loop, std::size_t i) { close(loop, i); };
  tulipa::LoopGroup group(
      static_cast<std::size_t>(n),
      [&](tulipa::EventLoop& loop, std::size_t i) {
        try {
          open(loop, i);
        } catch (const std::system_error& e) {
          std::fprintf(stderr, "%s: %s\n", program, e.what());
          failed.fetch_add(1);
        }
        listening.fetch_add(1);
        listening.notify_all();
      },
      std::move(options));
  while (listening.load() < n) listening.wait(listening.load());
  if (failed.load() > 0) return 1;  // the group's destructor stops and joins
  std::puts("ready");
  std::fflush(stdout);
  group.join();
  return 0;
}

}  // namespace serve_loops
