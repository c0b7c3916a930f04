// memory_return: does memory come back after a burst? Prints RSS (VmRSS) before, at the peak, and 1 s after the
// burst was freed, for three bursts (issue 10):
//   write-queue  one connection writes 256 MiB to a peer that never reads (socketpair), then aborts it;
//   tls          2,000 TLS connections over loopback, handshaken and holding one echoed message, then closed;
//   tcp          10,000 plain connections (both ends in this process, so fewer if the descriptor limit cannot hold
//                twice that), each echoing one message, then closed;
//                also the loop's reserves (EventLoop::reserves: callback nodes, timer and fd slots) at each point.
// A measurement, not a test: run it as `build/bench/memory_return [write-queue|tls|tcp|all]`. The TLS certificates are
// made at run time (tests/support/test_certs).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "proc_status.hpp"
#include "support/test_certs.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/tls.hpp"
#include "tulipa/tls_net.hpp"

namespace {

using namespace tulipa;

void run_for(EventLoop& loop, std::chrono::milliseconds d) {
  bool done = false;
  [[maybe_unused]] TimerHandle t = loop.call_later(d, [&] { done = true; });
  while (!done) loop.run_once();
}

void report(const char* what, long before, long peak, long after) {
  std::printf("%-12s rss_before_mib=%.1f rss_peak_mib=%.1f rss_1s_after_mib=%.1f returned=%.0f%%\n", what,
              before / 1024.0, peak / 1024.0, after / 1024.0,
              peak > before ? 100.0 * double(peak - after) / double(peak - before) : 100.0);
  std::fflush(stdout);
}

struct Quiet : Protocol {
  Transport* t = nullptr;
  void connection_made(Transport& transport) override { t = &transport; }
};

void write_queue_burst() {
  EventLoop loop;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
  ::fcntl(sv[0], F_SETFL, O_NONBLOCK);
  auto owned = std::make_unique<Quiet>();
  Quiet* p = owned.get();
  connect_accepted_socket(loop, std::move(owned), sv[0]);
  run_for(loop, std::chrono::milliseconds(50));
  const long before = bench::rss_kib();
  std::vector<std::byte> piece(1024, std::byte{'x'});
  for (std::size_t sent = 0; sent < (std::size_t{256} << 20); sent += piece.size()) p->t->write(piece);  // 1 KiB writes
  const long peak = bench::rss_kib();
  p->t->abort();
  run_for(loop, std::chrono::seconds(1));
  report("write-queue", before, peak, bench::rss_kib());
  ::close(sv[1]);
}

struct Echo : Protocol {
  Transport* t = nullptr;
  void connection_made(Transport& transport) override { t = &transport; }
  void data_received(std::span<const std::byte> data) override { t->write(data); }
};

struct Burst;

struct Client : Protocol {
  Transport* t = nullptr;
  Burst* burst;
  bool echoed = false;
  explicit Client(Burst* b) : burst(b) {}
  void connection_made(Transport& transport) override {
    t = &transport;
    t->write("ping");
  }
  void data_received(std::span<const std::byte>) override;
  void connection_lost(std::exception_ptr) override;
};

// n clients that each send "ping" and wait for its echo; what the TCP and TLS bursts share.
struct Burst {
  int echoed = 0, lost = 0, lost_unechoed = 0, connected = 0, failed = 0;
  std::vector<Client*> clients;
  std::vector<ConnectHandle> handles;

  // connect(factory, done) opens one connection (TCP or TLS) and returns its handle. Runs the loop until every
  // client was echoed, failed to connect, or was lost before its echo (counted, not waited for: a peer that resets
  // under the burst would otherwise keep the bench waiting forever). pace: a 1 ms pass after that many connects.
  template <class Connect>
  void open(EventLoop& loop, int n, Connect connect, int pace = 0) {
    for (int i = 0; i < n; ++i) {
      auto c = std::make_unique<Client>(this);
      Client* raw = c.get();
      auto holder = std::make_shared<std::unique_ptr<Client>>(std::move(c));
      handles.push_back(connect([holder] { return std::move(*holder); },
                                [this, raw](Transport* t, std::exception_ptr) {
                                  if (t) {
                                    ++connected;
                                    clients.push_back(raw);
                                  } else {
                                    ++failed;
                                  }
                                }));
      if (pace && i % pace == pace - 1) run_for(loop, std::chrono::milliseconds(1));
    }
    while (echoed + failed + lost_unechoed < n) loop.run_once();
  }
  void close_all(EventLoop& loop) {
    for (Client* c : clients) c->t->close();
    while (lost < connected) loop.run_once();
  }
};

void Client::data_received(std::span<const std::byte>) {
  if (!echoed) ++burst->echoed;
  echoed = true;
}

void Client::connection_lost(std::exception_ptr) {
  ++burst->lost;
  if (!echoed) ++burst->lost_unechoed;
}

void tls_burst(int n) {
  EventLoop loop;
  SslContext server_ctx = test::localhost_server();
  SslContext client_ctx = test::trusting_client();
  Server server = create_server(loop, [] { return std::make_unique<Echo>(); }, "127.0.0.1", 0, server_ctx);
  const std::uint16_t port = server.sockets().at(0).port();
  run_for(loop, std::chrono::milliseconds(50));
  const long before = bench::rss_kib();
  Burst burst;
  burst.open(
      loop, n,
      [&](auto factory, auto done) {
        return create_connection(loop, std::move(factory), "127.0.0.1", port, client_ctx, std::move(done), {},
                                 {.server_hostname = "localhost"});
      },
      100);  // pace the handshakes a little
  const long peak = bench::rss_kib();
  burst.close_all(loop);
  server.close();
  run_for(loop, std::chrono::seconds(1));
  std::printf("tls          connections=%d handshaken=%d failed=%d lost_before_echo=%d\n", n, burst.connected,
              burst.failed, burst.lost_unechoed);
  report("tls", before, peak, bench::rss_kib());
}

struct CountingEcho : Echo {
  int* lost;
  explicit CountingEcho(int* l) : lost(l) {}
  void connection_lost(std::exception_ptr) override { ++*lost; }
};

void print_reserves(const char* when, const EventLoop::Reserves& r) {
  std::printf("tcp          %-6s callback_nodes=%zu scheduled=%zu timer_slots=%zu fd_slots=%zu\n", when,
              r.callback_nodes, r.callbacks_scheduled, r.timer_slots, r.fd_slots);
}

void tcp_burst(int n) {
  EventLoop loop;
  int server_lost = 0;
  Server server = create_server(loop, [&] { return std::make_unique<CountingEcho>(&server_lost); }, "127.0.0.1", 0);
  const std::uint16_t port = server.sockets().at(0).port();
  run_for(loop, std::chrono::milliseconds(50));
  const long before = bench::rss_kib();
  print_reserves("before", loop.reserves());
  Burst burst;
  burst.open(loop, n, [&](auto factory, auto done) {
    return create_connection(loop, std::move(factory), "127.0.0.1", port, std::move(done));
  });
  const long peak = bench::rss_kib();
  print_reserves("peak", loop.reserves());
  burst.close_all(loop);
  while (server_lost < burst.connected) loop.run_once();
  burst.handles.clear();
  run_for(loop, std::chrono::seconds(1));
  std::printf("tcp          connections=%d connected=%d failed=%d lost_before_echo=%d\n", n, burst.connected,
              burst.failed, burst.lost_unechoed);
  print_reserves("after", loop.reserves());
  report("tcp", before, peak, bench::rss_kib());
}

}  // namespace

int main(int argc, char** argv) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  const std::string what = argc > 1 ? argv[1] : "all";
  if (what == "write-queue" || what == "all") write_queue_burst();
  if (what == "tls" || what == "all") tls_burst(2000);
  if (what == "tcp" || what == "all") tcp_burst(int(std::min<rlim_t>(10000, (rl.rlim_cur - 64) / 2)));
  return 0;
}
