// tulipa_echo PORT STYLE [--tls CERT KEY] [--count-allocs] [--loops N]: the echo server the side-by-side benchmark
// (bench/run.sh) runs. --tls serves the same STYLE over TLS (echo_tls.cpp), for run.sh echo-tls.
//   STYLE protocol: a Protocol that writes back what it receives (data_received -> transport.write), and stops
//                   reading a client while its echo waits in our write buffer above the high-water mark.
//   STYLE streams: a coroutine per connection (read -> write -> drain), in echo_streams.cpp.
// Listens on 127.0.0.1:PORT (TCP_NODELAY on accepted connections, as asyncio), prints "ready" once listening,
// and exits cleanly on SIGTERM or SIGINT. Exit status 2: bad arguments; 1: it could not listen (the reason on
// stderr).
// --loops N runs N loops on N threads (tulipa::LoopGroup), each listening on the port with SO_REUSEPORT; the kernel
// spreads the connections over them. The backend is TULIPA_LOOP's (epoll by default; uring).
// --count-allocs counts every operator new; at exit it prints the allocations made after the last connection
// was accepted, per data_received call (the steady state: 0 is the target).
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
#include "echo_streams.hpp"
#include "echo_tls.hpp"
#include "serve_loops.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

namespace {

using count_allocs::allocations;
using count_allocs::counting;

struct Counters {
  std::uint64_t reads = 0;
  std::uint64_t allocs_at_last_connect = 0;
  std::uint64_t reads_at_last_connect = 0;
  std::uint64_t connections = 0;
  std::uint64_t allocs_at_last_read = 0;  // the window ends at the last request: teardown is not steady state
};
thread_local Counters counters;  // per loop (with --loops N, each thread counts its own)

void note_connection() {
  ++counters.connections;
  counters.allocs_at_last_connect = allocations;
  counters.reads_at_last_connect = counters.reads;
}

void note_read() {
  ++counters.reads;
  counters.allocs_at_last_read = allocations;
}

class EchoProtocol final : public tulipa::Protocol {
 public:
  void connection_made(tulipa::Transport& transport) override {
    transport_ = &transport;
    note_connection();
  }
  void data_received(std::span<const std::byte> data) override {
    note_read();
    transport_->write(data);
  }
  // Flow control: a client that sends and never reads would otherwise grow our write buffer without bound (the
  // transport calls these at its high- and low-water marks). Stop reading it until its data has gone out.
  void pause_writing() override { transport_->pause_reading(); }
  void resume_writing() override { transport_->resume_reading(); }

 private:
  tulipa::Transport* transport_ = nullptr;
};

// --loops N: every loop listens on the port with SO_REUSEPORT (serve_loops.hpp).
int run_loops(int n, std::uint16_t port, bool streams, tulipa::ServerOptions options) {
  options.reuse_port = true;
  std::vector<std::optional<tulipa::Server>> servers(static_cast<std::size_t>(n));
  return serve_loops::serve_on_loops(
      n, "tulipa_echo",
      [&](tulipa::EventLoop& loop, std::size_t i) {
        if (streams) {
          servers[i].emplace(echo_streams::start(loop, port, options, {}));
        } else {
          servers[i].emplace(
              tulipa::create_server(loop, [] { return std::make_unique<EchoProtocol>(); }, "127.0.0.1", port, options));
        }
      },
      [&](tulipa::EventLoop& loop, std::size_t i) {
        if (!servers[i]) return;
        servers[i]->close();
        servers[i]->abort_clients();
        if (streams) echo_streams::finish(loop);
        servers[i].reset();  // on its own loop's thread, while the loop exists
      });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PORT protocol|streams [--tls CERT KEY] [--count-allocs] [--loops N]\n", argv[0]);
    return 2;
  }
  int port = std::atoi(argv[1]);
  std::string style = argv[2];
  std::unique_ptr<echo_tls::Files> tls;
  int loops = 1;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--count-allocs") == 0) counting = true;
    if (std::strcmp(argv[i], "--loops") == 0 && i + 1 < argc) loops = std::atoi(argv[++i]);
    if (std::strcmp(argv[i], "--tls") == 0) {
      if (i + 2 >= argc) {
        std::fprintf(stderr, "tulipa_echo: --tls needs CERT and KEY (PEM files)\n");
        return 2;
      }
      tls = std::make_unique<echo_tls::Files>(echo_tls::Files{argv[i + 1], argv[i + 2]});
      i += 2;
    }
  }
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "tulipa_echo: bad port '%s'\n", argv[1]);
    return 2;
  }
  if (style != "protocol" && style != "streams") {
    std::fprintf(stderr, "tulipa_echo: style '%s' is not available (protocol, streams)\n", style.c_str());
    return 2;
  }

  if (loops < 1 || (loops > 1 && (counting || tls))) {
    std::fprintf(stderr, "tulipa_echo: --loops needs N >= 1, and N > 1 goes without --count-allocs and --tls\n");
    return 2;
  }
  tulipa::ServerOptions options;
  options.backlog = 4096;  // as the peers: the load generator opens thousands of connections at once
  if (loops > 1) return run_loops(loops, static_cast<std::uint16_t>(port), style == "streams", options);

  tulipa::EventLoop loop;
  auto start = [&]() -> tulipa::Server {
    if (tls) {
      return echo_tls::start(loop, static_cast<std::uint16_t>(port), options, *tls, style == "streams",
                             [] { return std::make_unique<EchoProtocol>(); },
                             {[] { note_connection(); }, [] { note_read(); }});
    }
    if (style == "streams") {
      return echo_streams::start(loop, static_cast<std::uint16_t>(port), options,
                                 {[] { note_connection(); }, [] { note_read(); }});
    }
    return tulipa::create_server(
        loop, [] { return std::make_unique<EchoProtocol>(); }, "127.0.0.1", static_cast<std::uint16_t>(port), options);
  };
  // A port already taken (by another server, or by a client's connection: run.sh's ports lie in the ephemeral
  // range) is the one failure here: say so and exit 1, rather than abort on an uncaught exception.
  std::optional<tulipa::Server> listening;
  try {
    listening.emplace(start());
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "tulipa_echo: %s\n", e.what());
    return 1;
  }
  tulipa::Server& server = *listening;
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  std::puts("ready");
  std::fflush(stdout);
  loop.run_forever();

  server.close();
  server.abort_clients();
  // One more pass, for connection_lost of every connection. Not run_once(): with no connection left nothing is
  // ready, and it would wait in the selector forever.
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  if (style == "streams") echo_streams::finish(loop);
  if (counting) {
    std::uint64_t reads = counters.reads - counters.reads_at_last_connect;
    std::uint64_t allocs = counters.allocs_at_last_read - counters.allocs_at_last_connect;
    std::fprintf(stderr,
                 "tulipa_echo: connections=%llu data_received=%llu; from the last connection to the last request: "
                 "data_received=%llu "
                 "allocations=%llu per_request=%.6f\n",
                 (unsigned long long)counters.connections, (unsigned long long)counters.reads,
                 (unsigned long long)reads, (unsigned long long)allocs, reads ? double(allocs) / reads : 0.0);
  }
  return 0;
}
