// tulipa_redis SHAPE HOST PORT SECS [--count-allocs]: tulipa::redis as a client of ../shared/bench/db/redis.sh.
// GETs bench:v100 (100 bytes, set by redis.sh) and checks every reply's length; prints "ops=N secs=S" last.
//   seq      one task, one GET at a time, on the client's shared connection
//   pipe     16 tasks GETting at once on one connection: the client's automatic pipelining writes what the tasks
//            queued in one loop pass together (redis-benchmark -P 16 writes batches of 16)
//   conns50  50 clients (50 connections), a task each, one GET at a time
// GET goes into a string per task (client.get(key, out)), whose capacity is reused.
// --count-allocs counts every operator new and prints allocations per GET over the run after a warm-up.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "tulipa/combinators.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/redis/client.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"

namespace {

bool counting = false;
std::uint64_t allocations = 0;

struct Run {
  bool stop = false;
  std::uint64_t ops = 0;
  std::uint64_t bad = 0;
};

tulipa::Coro<void> worker(tulipa::redis::Client& c, Run& run) {
  std::string out;
  while (!run.stop) {
    if (!co_await c.get("bench:v100", out) || out.size() != 100) ++run.bad;
    ++run.ops;
  }
}

tulipa::Coro<int> bench(std::string shape, std::string host, std::uint16_t port, double secs) {
  using namespace tulipa;
  EventLoop& loop = get_running_loop();
  redis::Options o;
  o.host = host;
  o.port = port;
  std::size_t clients = shape == "conns50" ? 50 : 1;
  std::size_t per_client = shape == "pipe" ? 16 : 1;
  if (shape != "seq" && shape != "pipe" && shape != "conns50") {
    std::fprintf(stderr, "tulipa_redis: no shape %s\n", shape.c_str());
    co_return 2;
  }
  std::vector<std::unique_ptr<redis::Client>> cs;
  for (std::size_t i = 0; i < clients; ++i) cs.push_back(std::make_unique<redis::Client>(loop, o));
  // Connected before the clock starts, as the peers are.
  std::vector<Task<void>> warm;
  for (auto& c : cs) warm.push_back(create_task(c->connect()));
  co_await gather(std::move(warm));

  Run run;
  std::uint64_t ops_at_mark = 0, allocs_at_mark = 0;
  auto start = std::chrono::steady_clock::now();
  auto secs_d = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(secs));
  // The allocation window opens after a tenth of the run (buffers and pools have grown by then).
  loop.call_later(secs_d / 10, [&] {
    ops_at_mark = run.ops;
    allocs_at_mark = allocations;
  });
  loop.call_later(secs_d, [&] { run.stop = true; });
  std::vector<Task<void>> tasks;
  for (auto& c : cs)
    for (std::size_t i = 0; i < per_client; ++i) tasks.push_back(create_task(worker(*c, run)));
  co_await gather(std::move(tasks));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::uint64_t window_allocs = allocations - allocs_at_mark, window_ops = run.ops - ops_at_mark;
  if (run.bad) std::fprintf(stderr, "tulipa_redis: %llu bad replies\n", (unsigned long long)run.bad);
  if (counting)
    std::printf("allocations=%llu gets=%llu per_get=%.6f\n", (unsigned long long)window_allocs,
                (unsigned long long)window_ops, window_ops ? double(window_allocs) / double(window_ops) : 0.0);
  std::printf("ops=%llu secs=%.3f\n", (unsigned long long)run.ops, took);
  std::fflush(stdout);
  co_return run.bad ? 1 : 0;
}

}  // namespace

// Counting is one predictable branch per allocation (of which the steady state has none). Not inlined: g++ would
// otherwise pair an inlined malloc with an inlined free and warn (-Wmismatched-new-delete) about its own pairing.
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (counting) ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s seq|pipe|conns50 HOST PORT SECS [--count-allocs]\n", argv[0]);
    return 2;
  }
  for (int i = 5; i < argc; ++i)
    if (std::strcmp(argv[i], "--count-allocs") == 0) counting = true;
  try {
    return tulipa::run(bench(argv[1], argv[2], static_cast<std::uint16_t>(std::atoi(argv[3])), std::atof(argv[4])));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa_redis: %s\n", e.what());
    return 1;
  }
}
