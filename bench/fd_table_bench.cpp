// The per-fd tables on the hot path: FdMap::find (what every reported event costs in the selector and again in the
// loop), and one loop pass delivering `ready` readable fds to add_reader callbacks (select, two table lookups per
// event, the ReaderWriter's dispatch). Nothing is read, so level triggering reports the same fds every pass.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include "selectors/fd_map.hpp"
#include "tulipa/loop.hpp"

namespace {

struct Slot {  // the size of the loop's and the epoll selector's entries
  void* data = nullptr;
  std::uint64_t events = 0;
  bool occupied() const noexcept { return events != 0; }
};

// Looks up `n` registered fds 0..n-1, in order (`stride` 1) or hopping around (`stride` 97, coprime to n).
void BM_fd_map_find(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int stride = static_cast<int>(state.range(1));
  tulipa::detail::FdMap<Slot> map;
  for (int fd = 0; fd < n; ++fd) map.insert(fd, Slot{nullptr, 1});
  int fd = 0;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) {
      benchmark::DoNotOptimize(map.find(fd));
      fd += stride;
      if (fd >= n) fd -= n;
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_fd_map_find)->Args({1024, 1})->Args({10010, 1})->Args({10010, 97})->ArgNames({"fds", "stride"});

void BM_loop_reader_pass(benchmark::State& state) {
  const auto registered = static_cast<std::size_t>(state.range(0));
  const auto ready = static_cast<std::size_t>(state.range(1));
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < 2 * registered + 64) {
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 2 * registered + 64);
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  std::vector<int> fds;
  std::uint64_t calls = 0;
  {
    tulipa::EventLoop loop;
    for (std::size_t i = 0; i < registered; ++i) {
      int p[2];
      if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        state.SkipWithError("pipe2 failed (RLIMIT_NOFILE?)");
        break;
      }
      fds.push_back(p[0]);
      fds.push_back(p[1]);
      loop.add_reader(p[0], [&calls] { ++calls; });
      if (i < ready && ::write(p[1], "x", 1) != 1) {
        state.SkipWithError("write failed");
        break;
      }
    }
    if (fds.size() == 2 * registered) {
      loop.run_once();  // warm up: the selector's buffer grows to the batch
      for (auto _ : state) loop.run_once();
    }
    for (std::size_t i = 0; i < fds.size(); i += 2) loop.remove_reader(fds[i]);
  }
  for (int fd : fds) ::close(fd);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ready));
}
BENCHMARK(BM_loop_reader_pass)
    ->Args({1024, 64})
    ->Args({1024, 1024})
    ->Args({9000, 1024})
    ->ArgNames({"registered", "ready"});

}  // namespace

BENCHMARK_MAIN();
