// tulipa_http PORT [--count-allocs [--trace-allocs]]: the HTTP benchmark server for /work/shared/bench/run.sh (modes
// http, http-pipe, http-idle). GET / -> 200 "Hello, World!" (text/plain, keep-alive) and POST /echo -> 200 with the
// request body, both through the real router and response path of tulipa::http. Listens on 127.0.0.1:PORT, prints
// "ready", exits cleanly on SIGTERM or SIGINT. Exit status 2: bad arguments; 1: it could not listen.
// --count-allocs counts every operator new; at exit it prints the allocations per request in the steady state: from
// the 1,000th request after the last accepted connection to the last request (0 is the target). The window starts
// after a warm-up because what comes before is not per request: a pool slab for the connection objects
// and the transport's read buffer, and the first use of the per-thread scratch (header array, output buffer).
// --trace-allocs also prints the call stack of each allocation in the window (count_allocs.hpp).
// --loops N runs N loops on N threads (tulipa::LoopGroup), each with its own router and listening socket on the port
// (SO_REUSEPORT); the backend is TULIPA_LOOP's (epoll by default). Not with --count-allocs.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "count_allocs.hpp"
#include "serve_loops.hpp"
#include "tulipa/http/server.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

namespace {

using count_allocs::allocations;
using count_allocs::counting;
bool trace = false;  // --trace-allocs

constexpr std::uint64_t warm_up = 1000;

struct Counters {
  std::uint64_t requests = 0;
  std::uint64_t connections = 0;
  std::uint64_t requests_at_last_connect = 0;
  std::uint64_t allocs_at_window = 0;  // at the start of the window (warm_up requests after the last connection)
  std::uint64_t allocs_at_last_request = 0;
};
thread_local Counters counters;  // per loop (with --loops N, each thread counts its own)

void note_request() {
  if (++counters.requests == counters.requests_at_last_connect + warm_up) {
    counters.allocs_at_window = allocations;
    if (trace) {
      std::fputs("--- the steady-state window starts\n", stderr);
      count_allocs::enable_backtraces();
    }
  }
  counters.allocs_at_last_request = allocations;
}

// One loop's server: the router, the HTTP server and its listening socket. Heap-held: the factory points at it.
struct Site {
  std::optional<tulipa::http::Server> http;
  tulipa::ProtocolFactory inner;
  std::optional<tulipa::Server> listening;

  // Throws std::system_error when the port cannot be listened on.
  Site(tulipa::EventLoop& loop, std::uint16_t port, tulipa::ServerOptions options) {
    tulipa::http::Router router;
    router.get("/", [](tulipa::http::Request&) {
      note_request();
      tulipa::http::Response r;
      r.set_static_body("Hello, World!", "text/plain");
      return r;
    });
    router.post("/echo", [](tulipa::http::Request& req) {
      note_request();
      return tulipa::http::Response(200, std::string(req.body()), "text/plain");
    });
    http.emplace(tulipa::http::make_server(loop, std::move(router)));
    inner = http->factory();
    listening.emplace(tulipa::create_server(
        loop,
        [this] {
          ++counters.connections;
          counters.requests_at_last_connect = counters.requests;
          count_allocs::backtraces = false;  // a new window will start (the stacks printed so far do not count)
          return inner();
        },
        "127.0.0.1", port, options));
  }
  void close() {
    listening->close();
    listening->abort_clients();
  }
};

// --loops N: every loop listens on the port with SO_REUSEPORT (serve_loops.hpp).
int run_loops(int n, std::uint16_t port, tulipa::ServerOptions options) {
  options.reuse_port = true;
  std::vector<std::unique_ptr<Site>> sites(static_cast<std::size_t>(n));
  return serve_loops::serve_on_loops(
      n, "tulipa_http",
      [&](tulipa::EventLoop& loop, std::size_t i) { sites[i] = std::make_unique<Site>(loop, port, options); },
      [&](tulipa::EventLoop&, std::size_t i) {
        if (sites[i]) sites[i]->close();
        sites[i].reset();  // on its own loop's thread, while the loop exists
      });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PORT [--count-allocs [--trace-allocs]] [--loops N]\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  int loops = 1;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--count-allocs") == 0)
      counting = true;
    else if (std::strcmp(argv[i], "--trace-allocs") == 0)
      trace = true;
    else if (std::strcmp(argv[i], "--loops") == 0 && i + 1 < argc)
      loops = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "tulipa_http: unknown option '%s'\n", argv[i]);
      return 2;
    }
  }
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "tulipa_http: bad port '%s'\n", argv[1]);
    return 2;
  }

  tulipa::ServerOptions options;
  options.backlog = 4096;  // as the peers: the load generator opens thousands of connections at once
  if (loops < 1 || (loops > 1 && counting)) {
    std::fprintf(stderr, "tulipa_http: --loops needs N >= 1, and N > 1 goes without --count-allocs\n");
    return 2;
  }
  if (loops > 1) return run_loops(loops, static_cast<std::uint16_t>(port), options);

  tulipa::EventLoop loop;
  std::unique_ptr<Site> site;
  try {
    site = std::make_unique<Site>(loop, static_cast<std::uint16_t>(port), options);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "tulipa_http: %s\n", e.what());
    return 1;
  }
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  std::puts("ready");
  std::fflush(stdout);
  loop.run_forever();

  site->close();
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  if (counting) {
    const std::uint64_t after = counters.requests - counters.requests_at_last_connect;
    const std::uint64_t reqs = after > warm_up ? after - warm_up : 0;
    const std::uint64_t allocs = reqs ? counters.allocs_at_last_request - counters.allocs_at_window : 0;
    std::fprintf(stderr,
                 "tulipa_http: connections=%llu requests=%llu; steady state (from the 1000th request after the last "
                 "connection to the last request): requests=%llu allocations=%llu per_request=%.6f\n",
                 (unsigned long long)counters.connections, (unsigned long long)counters.requests,
                 (unsigned long long)reqs, (unsigned long long)allocs, reqs ? double(allocs) / double(reqs) : 0.0);
  }
  return 0;
}
