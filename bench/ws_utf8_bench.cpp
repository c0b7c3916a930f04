// The WebSocket UTF-8 validator (tulipa/http/websocket_utf8.hpp: shift DFA + 16-byte ASCII skip) beside a naive
// byte loop (one branchy decode per code point), on 64 KiB of ASCII, of mixed European text, and of CJK text.
// Reports bytes per second (GB/s = bytes_per_second / 1e9).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "tulipa/http/websocket_utf8.hpp"

namespace {

bool naive_utf8(const unsigned char* p, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    unsigned char b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    int len;
    unsigned lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
      len = 2;
    else if (b >= 0xE0 && b <= 0xEF)
      len = 3, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    else if (b >= 0xF0 && b <= 0xF4)
      len = 4, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    else
      return false;
    if (i + len > n) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (int k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
    i += len;
  }
  return true;
}

std::string corpus(int kind) {
  const char* piece = kind == 0   ? "The quick brown fox jumps over the lazy dog. 0123456789 {\"json\": true}\n"
                      : kind == 1 ? "Grüße aus Köln: naïve café, smørrebrød, Œuvre — «ça va?» ελληνικά 123\n"
                                  : "我能吞下玻璃而不伤身体。私はガラスを食べられます。유리를 먹을 수 있어요.\n";
  std::string s;
  while (s.size() < 65536) s += piece;
  s.resize(65536);
  while (!tulipa::websocket::is_valid_utf8(s)) s.pop_back();  // do not end inside a code point
  return s;
}

void BM_tulipa(benchmark::State& state) {
  std::string s = corpus(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    tulipa::websocket::Utf8Validator v;
    bool ok = v.feed(s) && v.complete();
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(s.size()));
}

void BM_naive(benchmark::State& state) {
  std::string s = corpus(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    bool ok = naive_utf8(reinterpret_cast<const unsigned char*>(s.data()), s.size());
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(s.size()));
}

// Arg 0: ASCII, 1: mixed European, 2: CJK.
BENCHMARK(BM_tulipa)->Arg(0)->Arg(1)->Arg(2);
BENCHMARK(BM_naive)->Arg(0)->Arg(1)->Arg(2);

}  // namespace

BENCHMARK_MAIN();
