// The RESP parser's throughput (tulipa::redis, resp.hpp): a large array reply (10,000 bulk strings of 100 bytes,
// as LRANGE or MGET answer) scanned, walked in place, and built into an owned Reply; a GET's reply; writing a
// command. Bytes per second are of the reply's wire size.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "tulipa/redis/resp.hpp"

using namespace tulipa::redis;

namespace {

std::string large_array(int n, std::size_t size) {
  std::string s = "*" + std::to_string(n) + "\r\n";
  std::string v(size, 'x');
  for (int i = 0; i < n; ++i) s += "$" + std::to_string(size) + "\r\n" + v + "\r\n";
  return s;
}

void BM_ScanLargeArray(benchmark::State& state) {
  std::string f = large_array(10000, 100);
  for (auto _ : state) {
    RespScanner s;
    benchmark::DoNotOptimize(s.scan(f.data(), f.size()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.size()));
}
BENCHMARK(BM_ScanLargeArray);

// Scan, then read every element in place (what a typed decoder does): zero copy.
void BM_ScanAndWalkLargeArray(benchmark::State& state) {
  std::string f = large_array(10000, 100);
  for (auto _ : state) {
    RespScanner s;
    std::size_t n = s.scan(f.data(), f.size());
    RespReader r(f.data(), n);
    RespHeader h = r.next();
    std::size_t total = 0;
    for (long long i = 0; i < h.count; ++i) total += r.next().text.size();
    benchmark::DoNotOptimize(total);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.size()));
}
BENCHMARK(BM_ScanAndWalkLargeArray);

// Scan, then an owned Reply tree (what the generic command() returns): one string per element.
void BM_ScanAndBuildReplyLargeArray(benchmark::State& state) {
  std::string f = large_array(10000, 100);
  for (auto _ : state) {
    RespScanner s;
    std::size_t n = s.scan(f.data(), f.size());
    RespReader r(f.data(), n);
    Reply rep = read_reply(r);
    benchmark::DoNotOptimize(rep.size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.size()));
}
BENCHMARK(BM_ScanAndBuildReplyLargeArray);

// The same array arriving in 1,460-byte segments (the scanner resumes where it stopped).
void BM_ScanLargeArrayInSegments(benchmark::State& state) {
  std::string f = large_array(10000, 100);
  for (auto _ : state) {
    RespScanner s;
    std::size_t got = 0, n = 0;
    while (n == 0) {
      got = std::min(f.size(), got + 1460);
      n = s.scan(f.data(), got);
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.size()));
}
BENCHMARK(BM_ScanLargeArrayInSegments);

void BM_GetReply(benchmark::State& state) {
  std::string f = "$100\r\n" + std::string(100, 'v') + "\r\n";
  std::string out;
  for (auto _ : state) {
    RespScanner s;
    std::size_t n = s.scan(f.data(), f.size());
    RespReader r(f.data(), n);
    out.assign(r.next_value().text);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.size()));
}
BENCHMARK(BM_GetReply);

void BM_WriteGet(benchmark::State& state) {
  std::string out;
  std::string key = "bench:v100";
  for (auto _ : state) {
    out.clear();
    Arg args[] = {Arg("GET"), Arg(key)};
    append_command(out, args);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_WriteGet);

}  // namespace

BENCHMARK_MAIN();
