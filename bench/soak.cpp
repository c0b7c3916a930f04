// soak: a long run under connection churn, to see whether memory and descriptors stay flat (issue 10). Not a test.
//   build/bench/soak [--conns N] [--seconds S] [--churn PER_SECOND] [--style protocol|streams]
// Forks a server (tulipa echo on 127.0.0.1, the given style) and drives it from this process: N connections
// (default 10,000) each sending a 64-byte message and waiting for its echo, over and over; every second
// PER_SECOND of them (default 1,000) are closed (half by the client, half aborted with RST) and replaced by new
// ones. Every 10 s it prints the server's VmRSS and open descriptors, the echoes and reconnections done, and at the
// end whether RSS and descriptors were flat: the last sample against the first one taken after the warm-up
// (the first minute, or a sixth of the run).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "proc_status.hpp"
#include "tulipa/detail/frame_alloc.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/task.hpp"

namespace {

using namespace tulipa;
using Wall = std::chrono::steady_clock;

int open_fds(int pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

void raise_fd_limit() {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

// --- the server (child process)

struct EchoProtocol final : Protocol {
  Transport* t = nullptr;
  void connection_made(Transport& transport) override { t = &transport; }
  void data_received(std::span<const std::byte> data) override { t->write(data); }
  void pause_writing() override { t->pause_reading(); }
  void resume_writing() override { t->resume_reading(); }
};

Coro<void> echo(StreamReader reader, StreamWriter writer) {
  for (;;) {
    Bytes data = co_await reader.read(65536);
    if (data.empty()) break;
    writer.write(data);
    co_await writer.drain();
  }
  writer.close();
}

[[noreturn]] void serve(int ready_fd, bool streams) {
  EventLoop loop;
  loop.set_exception_handler([](EventLoop& l, const ErrorContext& ctx) {
    if (!ctx.task.empty()) return;  // a connection task ended by a reset: expected under churn
    l.default_exception_handler(ctx);
  });
  std::optional<Server> server;
  if (streams) {
    server.emplace(start_server(loop, echo, "127.0.0.1", 0));
  } else {
    server.emplace(create_server(loop, [] { return std::make_unique<EchoProtocol>(); }, "127.0.0.1", 0));
  }
  const std::uint16_t port = server->sockets().at(0).port();
  if (::write(ready_fd, &port, sizeof port) != sizeof port) std::_Exit(1);
  ::close(ready_fd);
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  // Every 10 s, what the loop keeps for reuse (on stderr): a step in RSS shows here if a reserve grew.
  std::function<void()> report = [&] {
    const EventLoop::Reserves r = loop.reserves();
    std::fprintf(stderr, "server callback_nodes=%zu scheduled=%zu timer_slots=%zu fd_slots=%zu frame_slab_kib=%zu\n",
                 r.callback_nodes, r.callbacks_scheduled, r.timer_slots, r.fd_slots, detail::frame_slab_bytes() / 1024);
    loop.call_later(std::chrono::seconds(10), report);
  };
  loop.call_later(std::chrono::seconds(10), report);
  loop.run_forever();
  std::_Exit(0);
}

// --- the clients (this process)

struct Driver;

struct ClientConn final : Protocol {
  Driver* d;
  std::size_t slot;
  Transport* t = nullptr;
  std::size_t got = 0;
  ClientConn(Driver* driver, std::size_t s) : d(driver), slot(s) {}
  void connection_made(Transport& transport) override;
  void data_received(std::span<const std::byte> data) override;
  void connection_lost(std::exception_ptr) override;
};

struct Driver {
  EventLoop& loop;
  std::uint16_t port;
  std::vector<ClientConn*> slots;  // null while (re)connecting
  std::uint64_t echoes = 0, connects = 0, failures = 0;
  std::string message = std::string(64, 'm');
  bool stopping = false;  // the run is over: connections that end are not replaced
  void connect(std::size_t slot) {
    if (stopping) return;
    create_connection(
        loop, [this, slot] { return std::make_unique<ClientConn>(this, slot); }, "127.0.0.1", port,
        [this, slot](Transport* t, std::exception_ptr) {
          if (!t) {
            ++failures;
            loop.call_later(std::chrono::milliseconds(100), [this, slot] { connect(slot); });
          }
        });
  }
};

void ClientConn::connection_made(Transport& transport) {
  t = &transport;
  d->slots[slot] = this;
  ++d->connects;
  t->write(d->message);
}
void ClientConn::data_received(std::span<const std::byte> data) {
  got += data.size();
  if (got >= d->message.size()) {
    got -= d->message.size();
    ++d->echoes;
    t->write(d->message);
  }
}
void ClientConn::connection_lost(std::exception_ptr) {
  d->slots[slot] = nullptr;
  d->connect(slot);  // churn: every connection that ends is replaced
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t conns = 10000;
  int seconds = 600;
  std::size_t churn = 1000;
  bool streams = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--conns"))
      conns = std::strtoul(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--seconds"))
      seconds = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--churn"))
      churn = std::strtoul(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--style"))
      streams = !std::strcmp(argv[i + 1], "streams");
  }
  raise_fd_limit();
  int pipefd[2];
  if (::pipe(pipefd) != 0) return 1;
  const int server_pid = ::fork();
  if (server_pid == 0) {
    ::close(pipefd[0]);
    serve(pipefd[1], streams);
  }
  ::close(pipefd[1]);
  std::uint16_t port = 0;
  if (::read(pipefd[0], &port, sizeof port) != sizeof port) return 1;
  ::close(pipefd[0]);

  EventLoop loop;
  Driver d{loop, port, {}};
  d.slots.assign(conns, nullptr);
  for (std::size_t i = 0; i < conns; ++i) d.connect(i);
  std::mt19937 rng(42);
  std::uint64_t churned = 0;
  // Churn: each second, close `churn` random connections (half gracefully, half with RST); they reconnect.
  std::function<void()> tick = [&] {
    for (std::size_t k = 0; k < churn; ++k) {
      ClientConn* c = d.slots[rng() % conns];
      if (!c || !c->t || c->t->is_closing()) continue;
      if (k % 2)
        c->t->abort();
      else
        c->t->close();
      ++churned;
    }
    loop.call_later(std::chrono::seconds(1), tick);
  };
  loop.call_later(std::chrono::seconds(5), tick);  // after the connections came up

  const auto start = Wall::now();
  const int warmup = std::min(60, seconds / 6);
  long rss0 = -1, fds0 = -1, rss_last = -1, fds_last = -1, rss_max = 0;
  std::printf("soak: %zu connections, churn %zu/s, %d s, server style %s (pid %d)\n", conns, churn, seconds,
              streams ? "streams" : "protocol", server_pid);
  std::function<void()> sample = [&] {
    const int t = int(std::chrono::duration_cast<std::chrono::seconds>(Wall::now() - start).count());
    const long rss = bench::rss_kib(std::to_string(server_pid)), fds = open_fds(server_pid);
    std::size_t live = 0;
    for (ClientConn* c : d.slots) live += c != nullptr;
    std::printf(
        "t=%4ds server_rss_mib=%.1f server_fds=%ld live_conns=%zu echoes=%llu connects=%llu churned=%llu "
        "connect_failures=%llu\n",
        t, rss / 1024.0, fds, live, (unsigned long long)d.echoes, (unsigned long long)d.connects,
        (unsigned long long)churned, (unsigned long long)d.failures);
    std::fflush(stdout);
    if (t >= warmup && rss0 < 0) {
      rss0 = rss;
      fds0 = fds;
    }
    rss_last = rss;
    fds_last = fds;
    rss_max = std::max(rss_max, rss);
    if (t >= seconds) {
      loop.stop();
      return;
    }
    loop.call_later(std::chrono::seconds(10), sample);
  };
  loop.call_later(std::chrono::seconds(10), sample);
  loop.run_forever();
  // The clients' connection_lost reaches into `d`: end them (loop.close()) while it lives; the loop outlives it.
  d.stopping = true;
  loop.close();
  ::kill(server_pid, SIGTERM);
  int status = 0;
  ::waitpid(server_pid, &status, 0);
  const double growth = rss0 > 0 ? 100.0 * double(rss_last - rss0) / double(rss0) : 0.0;
  std::printf("soak: after warm-up rss %.1f -> %.1f MiB (%+.1f%%, max %.1f), fds %ld -> %ld: %s\n", rss0 / 1024.0,
              rss_last / 1024.0, growth, rss_max / 1024.0, fds0, fds_last,
              (growth < 5.0 && fds_last <= fds0 + long(churn) + 16) ? "flat" : "NOT flat");
  return 0;
}
