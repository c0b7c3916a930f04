// tulipa_pg SHAPE DSN SECS [--count-allocs]: tulipa::postgres as a client of ../shared/bench/db/pg.sh.
// Runs SHAPE for SECS seconds (the clock starts once connected), then prints "ops=N secs=S" last. Shapes:
//   seq     SELECT 1 (prepared), one connection, one query at a time
//   rows10  SELECT i, b, t, f, ts FROM rows10 WHERE i <= $1 (10), every field decoded, one at a time
//   pipe    100 tasks on one connection, each one query at a time: pipelined by the driver
//   pool    1,000 tasks sharing a Pool of 10 connections, one acquire per SELECT 1
// --count-allocs counts every malloc/calloc/realloc (libpq's and ours: operator new goes through malloc) and every
// operator new (ours alone) during the timed part, and prints both per query before the last line.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "tulipa/postgres/postgres.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/task.hpp"

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);

namespace {
bool counting = false;
std::atomic<std::uint64_t> mallocs{0}, news{0};
}  // namespace

extern "C" void* malloc(std::size_t n) {
  if (counting) mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t a, std::size_t b) {
  if (counting) mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, std::size_t n) {
  if (counting) mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* operator new(std::size_t n) {
  if (counting) news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace tulipa;
using namespace tulipa::postgres;

namespace {

void check_one(int v) {
  if (v != 1) throw std::runtime_error("SELECT 1 gave " + std::to_string(v));
}

struct Run {
  std::uint64_t ops = 0;
  TimePoint end;
  bool more(EventLoop& loop) const { return loop.time() < end; }
};

Coro<void> seq(Connection& c, Run& run, EventLoop& loop) {
  while (run.more(loop)) {
    check_one((co_await c.query("SELECT 1")).scalar<int>());
    ++run.ops;
  }
}

Coro<void> rows10(Connection& c, Run& run, EventLoop& loop) {
  std::int64_t sink = 0;
  while (run.more(loop)) {
    Result r = co_await c.query("SELECT i, b, t, f, ts FROM rows10 WHERE i <= $1", 10);
    if (r.size() != 10 || r.columns() != 5) throw std::runtime_error("rows10 gave " + std::to_string(r.size()));
    for (Row row : r) {
      sink += row.get<int>(0) + row.get<std::int64_t>(1) +
              static_cast<std::int64_t>(row.get<std::string_view>(2).size()) +
              static_cast<std::int64_t>(row.get<double>(3)) + row.get<Timestamp>(4).time_since_epoch().count();
    }
    ++run.ops;
  }
  if (sink == 42) std::puts("");  // keep the decoding
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s seq|rows10|pipe|pool DSN SECS [--count-allocs]\n", argv[0]);
    return 2;
  }
  std::string shape = argv[1], dsn = argv[2];
  double secs = std::atof(argv[3]);
  bool count_allocs = argc > 4 && std::strcmp(argv[4], "--count-allocs") == 0;
  Run r;
  double elapsed = 0;
  std::uint64_t m0 = 0, n0 = 0, m1 = 0, n1 = 0;
  try {
    run([&]() -> Coro<void> {
      EventLoop& loop = get_running_loop();
      auto start = [&] {
        r.end = loop.time() + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(secs));
        counting = count_allocs;
        m0 = mallocs.load();
        n0 = news.load();
      };
      auto stop = [&] {
        m1 = mallocs.load();
        n1 = news.load();
        counting = false;
      };
      std::chrono::steady_clock::time_point t0;
      if (shape == "seq" || shape == "rows10" || shape == "pipe") {
        auto c = co_await Connection::connect(dsn);
        start();
        t0 = std::chrono::steady_clock::now();
        if (shape == "seq") {
          co_await seq(c, r, loop);
        } else if (shape == "rows10") {
          co_await rows10(c, r, loop);
        } else {
          std::vector<Task<void>> tasks;
          for (int i = 0; i < 100; ++i) tasks.push_back(create_task(seq(c, r, loop)));
          for (auto& t : tasks) co_await t;
        }
      } else if (shape == "pool") {
        PoolOptions options;
        options.max_size = 10;
        options.min_idle = 10;
        Pool pool(dsn, options);
        while (pool.idle() < 10) co_await sleep(std::chrono::milliseconds(1));
        start();
        t0 = std::chrono::steady_clock::now();
        std::vector<Task<void>> tasks;
        for (int i = 0; i < 1000; ++i) {
          tasks.push_back(create_task([&]() -> Coro<void> {
            while (r.more(loop)) {
              check_one((co_await pool.query("SELECT 1")).scalar<int>());
              ++r.ops;
            }
          }));
        }
        for (auto& t : tasks) co_await t;
      } else {
        throw std::runtime_error("no shape " + shape);
      }
      stop();
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa_pg: %s\n", e.what());
    return 1;
  }
  if (count_allocs && r.ops)
    std::printf("mallocs_per_op=%.2f news_per_op=%.2f\n", double(m1 - m0) / double(r.ops),
                double(n1 - n0) / double(r.ops));
  std::printf("ops=%llu secs=%.3f\n", static_cast<unsigned long long>(r.ops), elapsed);
  return 0;
}
