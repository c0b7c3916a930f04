// The HTTP request parser against Debian's libhttp-parser 2.9.4, in one binary, on a 40-byte hello request and a
// ~700-byte browser request. Ours: the tokenizer plus the framing layer (what the server runs per request), with
// the SSE4.2 scans and forced scalar; libhttp-parser: a fresh parser per request with callbacks that record the
// method, URL and each header's name and value (what ours hands out). CPU time per request; the ratio is
// libhttp-parser / ours (the closing note of issue 14 quotes it).
#include <benchmark/benchmark.h>
#include <http_parser.h>

#include <cstring>
#include <string>

#include "tulipa/http/framing.hpp"
#include "tulipa/http/parser.hpp"

namespace {

const std::string hello = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";  // 40 bytes

const std::string browser =
    "GET /rooms/general/messages?since=1733219581&limit=50 HTTP/1.1\r\n"
    "Host: chat.example.com\r\n"
    "Connection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n"
    "sec-ch-ua-mobile: ?0\r\n"
    "sec-ch-ua-platform: \"Linux\"\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Referer: https://chat.example.com/rooms/general\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
    "Cookie: session=3f9a1c0e7b2d4e6f8a0b1c2d3e4f5a6b; theme=dark; _ga=GA1.1.1234567890.1733219581\r\n"
    "\r\n";

void ours(benchmark::State& state, const std::string& req, bool scalar) {
  tulipa::http::force_scalar(scalar);
  tulipa::http::Header headers[100];
  for (auto _ : state) {
    tulipa::http::RequestHead head;
    const auto r = tulipa::http::parse_request(req, head, headers);
    const auto f = tulipa::http::request_framing(head, std::span(headers, head.header_count), 1 << 20);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(f);
  }
  tulipa::http::force_scalar(false);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * req.size()));
  state.counters["bytes"] = static_cast<double>(req.size());
}

// What the callbacks record: the same views ours returns.
struct Recorded {
  const char* url = nullptr;
  std::size_t url_len = 0;
  struct {
    const char* p;
    std::size_t n;
  } fields[200];
  int count = 0;
};

int on_url(http_parser* p, const char* at, std::size_t n) {
  auto* r = static_cast<Recorded*>(p->data);
  r->url = at;
  r->url_len = n;
  return 0;
}
int on_piece(http_parser* p, const char* at, std::size_t n) {
  auto* r = static_cast<Recorded*>(p->data);
  if (r->count < 200) r->fields[r->count++] = {at, n};
  return 0;
}

void libhttp_parser(benchmark::State& state, const std::string& req) {
  http_parser_settings settings;
  std::memset(&settings, 0, sizeof settings);
  settings.on_url = on_url;
  settings.on_header_field = on_piece;
  settings.on_header_value = on_piece;
  Recorded rec;
  for (auto _ : state) {
    http_parser parser;
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &rec;
    rec.count = 0;
    const std::size_t n = http_parser_execute(&parser, &settings, req.data(), req.size());
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(rec);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * req.size()));
  state.counters["bytes"] = static_cast<double>(req.size());
}

BENCHMARK_CAPTURE(ours, hello_simd, hello, false);
BENCHMARK_CAPTURE(ours, hello_scalar, hello, true);
BENCHMARK_CAPTURE(libhttp_parser, hello, hello);
BENCHMARK_CAPTURE(ours, browser_simd, browser, false);
BENCHMARK_CAPTURE(ours, browser_scalar, browser, true);
BENCHMARK_CAPTURE(libhttp_parser, browser, browser);

}  // namespace

BENCHMARK_MAIN();
