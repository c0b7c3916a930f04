// Subprocess costs: one child (`true`) spawned, watched and reaped through the loop, with no pipes and with three,
// under pidfd and SIGCHLD watching; 64 children in flight at once; and bytes through `cat` (stdin pipe -> child ->
// stdout pipe). The baseline is the bare system calls (posix_spawn + blocking waitpid) in the same run: the
// difference is what the loop, the watcher and the transports add.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "subprocess/child_watcher.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/subprocess.hpp"

namespace {

using tulipa::detail::ChildWatchMode;

struct Counter final : tulipa::SubprocessProtocol {
  explicit Counter(int& done, std::size_t* bytes = nullptr) : done(done), bytes(bytes) {}
  void pipe_data_received(int, std::span<const std::byte> data) override {
    if (bytes) *bytes += data.size();
  }
  void connection_lost(std::exception_ptr) override { ++done; }
  int& done;
  std::size_t* bytes;
};

tulipa::SubprocessOptions pipes(bool on) {
  tulipa::SubprocessOptions o;
  if (on) {
    o.std_in = tulipa::Stdio::pipe();
    o.std_out = tulipa::Stdio::pipe();
    o.std_err = tulipa::Stdio::pipe();
  }
  return o;
}

void BM_posix_spawn_waitpid(benchmark::State& state) {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  for (auto _ : state) {
    pid_t pid;
    posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ);
    int status;
    waitpid(pid, &status, 0);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_posix_spawn_waitpid)->UseRealTime();

// One child at a time, spawned and run to connection_lost. Arg 0: pidfd / SIGCHLD; arg 1: with three pipes.
void BM_subprocess_one(benchmark::State& state) {
  tulipa::detail::set_child_watch_mode(state.range(0) == 0 ? ChildWatchMode::pidfd : ChildWatchMode::sigchld);
  const bool with_pipes = state.range(1) != 0;
  tulipa::EventLoop loop;
  int done = 0;
  for (auto _ : state) {
    int target = done + 1;
    tulipa::SubprocessTransport& t =
        tulipa::subprocess_exec(loop, std::make_unique<Counter>(done), {"/bin/true"}, pipes(with_pipes));
    if (with_pipes) t.get_stdin_transport()->close();
    while (done < target) loop.run_once();
  }
  tulipa::detail::set_child_watch_mode(ChildWatchMode::automatic);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(state.range(0) == 0 ? "pidfd" : "sigchld") + (with_pipes ? ", 3 pipes" : ""));
}
BENCHMARK(BM_subprocess_one)->Args({0, 0})->Args({1, 0})->Args({0, 1})->Args({1, 1})->UseRealTime();

// 64 children in flight at once, each replaced as soon as one finishes. Arg: pidfd / SIGCHLD.
void BM_subprocess_64_in_flight(benchmark::State& state) {
  tulipa::detail::set_child_watch_mode(state.range(0) == 0 ? ChildWatchMode::pidfd : ChildWatchMode::sigchld);
  tulipa::EventLoop loop;
  int done = 0;
  int started = 0;
  for (int i = 0; i < 64; ++i, ++started) tulipa::subprocess_exec(loop, std::make_unique<Counter>(done), {"/bin/true"});
  for (auto _ : state) {
    int target = done + 1;
    while (done < target) loop.run_once();
    tulipa::subprocess_exec(loop, std::make_unique<Counter>(done), {"/bin/true"});
    ++started;
  }
  while (done < started) loop.run_once();
  tulipa::detail::set_child_watch_mode(ChildWatchMode::automatic);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(state.range(0) == 0 ? "pidfd" : "sigchld");
}
BENCHMARK(BM_subprocess_64_in_flight)->Arg(0)->Arg(1)->UseRealTime();

// 16 MiB written to cat's stdin and read back from its stdout, in 64 KiB writes as the stdin buffer drains.
void BM_cat_throughput(benchmark::State& state) {
  constexpr std::size_t total = 16 << 20;
  const std::string block(64 * 1024, 'x');
  tulipa::EventLoop loop;
  for (auto _ : state) {
    int done = 0;
    std::size_t got = 0;
    tulipa::SubprocessOptions o;
    o.std_in = tulipa::Stdio::pipe();
    o.std_out = tulipa::Stdio::pipe();
    tulipa::SubprocessTransport& t = tulipa::subprocess_exec(loop, std::make_unique<Counter>(done, &got), {"cat"}, o);
    tulipa::WriteTransport* in = t.get_stdin_transport();
    std::size_t sent = 0;
    while (done == 0) {
      while (sent < total && in->get_write_buffer_size() < 64 * 1024) {
        in->write(block);
        sent += block.size();
        if (sent == total) in->close();
      }
      loop.run_once();
    }
    if (got != total) state.SkipWithError("short read");
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(total));
}
BENCHMARK(BM_cat_throughput)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
