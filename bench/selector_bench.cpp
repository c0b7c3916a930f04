// select(0) with `ready` of `registered` pipes readable, for each backend. Level-triggered, nothing is read, so
// every iteration reports the same fds: this measures the selector's own cost per pass (system call, translating
// the kernel's events, and for poll the scan of every registered fd), not I/O.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include <benchmark/benchmark.h>

#include "tulipa/selector.hpp"

namespace {

struct Pipes {
  std::vector<int> fds;
  ~Pipes() {
    for (int fd : fds) ::close(fd);
  }
};

void bench_select(benchmark::State& state, std::unique_ptr<tulipa::Selector> (*make)()) {
  auto registered = static_cast<std::size_t>(state.range(0));
  auto ready = static_cast<std::size_t>(state.range(1));
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < 2 * registered + 64) {
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 2 * registered + 64);
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  auto sel = make();
  Pipes pipes;
  for (std::size_t i = 0; i < registered; ++i) {
    int p[2];
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
      state.SkipWithError("pipe2 failed (RLIMIT_NOFILE?)");
      return;
    }
    pipes.fds.push_back(p[0]);
    pipes.fds.push_back(p[1]);
    sel->register_fd(p[0], tulipa::Events::read, nullptr);
    if (i < ready && ::write(p[1], "x", 1) != 1) {
      state.SkipWithError("write failed");
      return;
    }
  }
  if (sel->select(tulipa::Duration::zero()).size() != ready) {  // warm up: lets epoll's buffer grow to the batch
    state.SkipWithError("unexpected number of ready fds");
    return;
  }
  for (auto _ : state) {
    auto events = sel->select(tulipa::Duration::zero());
    benchmark::DoNotOptimize(events.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ready));
  state.SetLabel(std::string(sel->name()));
}

void args(benchmark::internal::Benchmark* b) {
  b->Args({1, 1})
      ->Args({64, 64})
      ->Args({1024, 1024})
      ->Args({1024, 1})
      ->Args({1024, 0})
      ->Args({8192, 8})
      ->ArgNames({"registered", "ready"});
}

BENCHMARK_CAPTURE(bench_select, epoll, &tulipa::make_epoll_selector)->Apply(args);
BENCHMARK_CAPTURE(bench_select, poll, &tulipa::make_poll_selector)->Apply(args);

}  // namespace

BENCHMARK_MAIN();
