// chat_load: the chat's load tool (issue 11). Drives one chat server (tulipa-chat, or the Node and Python peers in
// bench/chat/) with idle and active clients, on both of its doors, and prints one row of key=value figures:
//
//   chat_load --tcp HOST:PORT --ws ws://HOST:PORT/ws --pid PID [--idle N] [--senders N] [--rooms N] [--secs S]
//             [--flood-bytes B] [--name NAME] [--idle-only 1]
//
// 1. idle: N clients (half TCP lines, half WebSocket) connect and `/join benchNNN` (spread over the rooms); each is
//    ready when the server's answer names its room. The server's VmRSS before and after gives bytes_per_idle
//    (tcp and ws separately: the TCP half connects first and is measured on its own).
// 2. load: `--senders` more clients (half TCP, half WebSocket, spread over the rooms) each send "t=T s=S q=Q", wait
//    for their own message to come back, and send the next (closed loop) for `--secs`. Every client counts each
//    message it is delivered and its latency (now - T; one steady clock in this process). Figures: deliveries per
//    second, p50/p99 delivery latency, the server's CPU time over the phase (/proc/PID/stat) and deliveries per
//    server CPU-second, and lost = deliveries owed (members of the room at each send) - deliveries seen, after the
//    senders stopped and everything owed came in (or 10 s passed).
// 3. flood: one more TCP client sends `--flood-bytes` of short lines at once into the first room (N / rooms idle
//    members), while a probe client alone in its own room measures round trips of its own messages: probe_p99_ms.
//    The probe runs on a thread of its own (blocking sockets), so that its round trips are the server's, not this
//    loop's. The flood lines' deliveries are counted: flood_undelivered = those not seen when the phase ended (all
//    came, or 30 s passed; a round trip still waiting then counts with what it waited).
//
// The protocol every server speaks: a client starts in some room; "/join ROOM" moves it; any other line (a text
// message on the WebSocket) is said in the room and delivered to every member, the sender included, with its text
// intact somewhere in the delivery ("12:34:56 #room <nick> TEXT" or a JSON object). The tool looks only for its
// own markers ("t=", "f=") in what it receives, so the three servers' formats do not matter.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

#include "proc_status.hpp"
#include "tulipa/http/websocket.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"

namespace {

namespace ws = tulipa::websocket;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string tcp_host = "127.0.0.1";
  std::uint16_t tcp_port = 7070;
  std::string ws_url = "ws://127.0.0.1:8080/ws";
  std::string pid = "self";
  std::string name = "server";
  int idle = 1000, senders = 100, rooms = 10;
  double secs = 5;
  std::size_t flood_bytes = 64 * 1024;
  bool idle_only = false;  // --idle-only: connect the idle clients, print their figures, hold them --secs, exit
};

enum class Phase { connect, load, drain, flood };

struct Conn {
  int id = 0;
  int room = 0;
  bool sender = false;
  bool joined = false;
  std::uint64_t seq = 0;          // the last message this sender sent
  bool echoed = true;             // its own last message came back
  tulipa::Event* wake = nullptr;  // a sender's (or the probe's) wake-up when its message came back
  std::string partial;            // a TCP client's unfinished line
};

struct Ctx {
  Config cfg;
  Phase phase = Phase::connect;
  Clock::time_point t0 = Clock::now();
  std::vector<int> members;  // per room
  int joined = 0, failed = 0, want_joined = 0;
  tulipa::Event all_joined;
  std::uint64_t delivered = 0, owed = 0, flood_delivered = 0, flood_owed = 0;
  std::vector<std::uint32_t> latency_us;
  bool stop = false;
};

std::string room_name(int r) {
  char b[16];
  std::snprintf(b, sizeof b, "bench%03d", r);
  return b;
}

std::uint64_t now_us(const Ctx& c) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.t0).count());
}

// The number after `key` at `at` in `s` (0 when there is none).
std::uint64_t number_after(std::string_view s, std::size_t at) {
  std::uint64_t v = 0;
  std::from_chars(s.data() + at, s.data() + s.size(), v);
  return v;
}

// Counts the markers in what a client received (whole lines or whole WebSocket messages).
void feed(Ctx& ctx, Conn& c, std::string_view text) {
  if (!c.joined && text.find(room_name(c.room)) != std::string_view::npos) {
    c.joined = true;
    ++ctx.members[static_cast<std::size_t>(c.room)];
    if (++ctx.joined == ctx.want_joined) ctx.all_joined.set();
  }
  std::uint64_t now = now_us(ctx);
  for (std::size_t at = text.find("t="); at != std::string_view::npos; at = text.find("t=", at + 2)) {
    if (at > 0 && text[at - 1] != ' ' && text[at - 1] != '"' && text[at - 1] != '>') continue;
    std::uint64_t t = number_after(text, at + 2);
    std::size_t s_at = text.find(" s=", at), q_at = text.find(" q=", at);
    if (s_at == std::string_view::npos || q_at == std::string_view::npos) continue;
    std::uint64_t s = number_after(text, s_at + 3), q = number_after(text, q_at + 3);
    ++ctx.delivered;
    ctx.latency_us.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(now - t, UINT32_MAX)));
    if (s == static_cast<std::uint64_t>(c.id) && q == c.seq && c.wake) {
      c.echoed = true;
      c.wake->set();
    }
  }
  for (std::size_t at = text.find("f="); at != std::string_view::npos; at = text.find("f=", at + 2))
    ++ctx.flood_delivered;
}

void feed_lines(Ctx& ctx, Conn& c, std::string_view data) {
  // Lines may be split between reads: keep the unfinished one.
  std::size_t nl = data.rfind('\n');
  if (nl == std::string_view::npos) {
    c.partial.append(data);
    return;
  }
  if (!c.partial.empty()) {
    c.partial.append(data.substr(0, nl + 1));
    feed(ctx, c, c.partial);
    c.partial.clear();
  } else {
    feed(ctx, c, data.substr(0, nl + 1));
  }
  c.partial.append(data.substr(nl + 1));
}

std::string message(Ctx& ctx, Conn& c) {
  ++c.seq;
  c.echoed = false;
  c.wake->clear();
  return "t=" + std::to_string(now_us(ctx)) + " s=" + std::to_string(c.id) + " q=" + std::to_string(c.seq);
}

// A sender: one message in flight, until the load phase ends.
template <class Send>
tulipa::Coro<void> send_loop(Ctx& ctx, Conn& c, Send send) {
  tulipa::Event wake;
  c.wake = &wake;
  while (ctx.phase == Phase::connect) co_await tulipa::sleep(std::chrono::milliseconds(10));
  try {
    while (ctx.phase == Phase::load) {
      ctx.owed += static_cast<std::uint64_t>(ctx.members[static_cast<std::size_t>(c.room)]);
      std::string m = message(ctx, c);  // named: g++ 12 and class-type temporaries in co_await (coroutines.md)
      co_await send(std::move(m));
      co_await wake.wait();
    }
  } catch (...) {
    c.wake = nullptr;
    throw;
  }
  c.wake = nullptr;
}

tulipa::Coro<void> tcp_client(Ctx& ctx, Conn& c) {
  try {
    auto pair = co_await tulipa::open_connection(ctx.cfg.tcp_host, ctx.cfg.tcp_port);
    tulipa::StreamReader reader = std::move(pair.reader);
    tulipa::StreamWriter writer = std::move(pair.writer);
    writer.write("/join " + room_name(c.room) + "\n");
    std::optional<tulipa::Task<void>> sender;
    if (c.sender) {
      sender = tulipa::create_task(send_loop(ctx, c, [writer](std::string m) mutable -> tulipa::Coro<void> {
        m += '\n';
        writer.write(m);
        co_return;
      }));
    }
    for (;;) {
      tulipa::Bytes data = co_await reader.read(64 * 1024);
      if (data.empty() || ctx.stop) break;
      feed_lines(ctx, c, data.view());
    }
    if (sender) sender->cancel();
  } catch (const std::exception& e) {
    if (!ctx.stop) {
      ++ctx.failed;
      std::fprintf(stderr, "# tcp client %d: %s\n", c.id, e.what());
    }
  }
  if (!c.joined && ++ctx.joined == ctx.want_joined) ctx.all_joined.set();  // a failed client does not hold the rest
}

tulipa::Coro<void> ws_client(Ctx& ctx, Conn& c) {
  try {
    ws::WebSocket sock = co_await ws::connect(ctx.cfg.ws_url);
    {
      std::string join = "/join " + room_name(c.room);
      co_await sock.send(join);
    }
    // The sender task borrows `sock`: it is cancelled (and its send done) before this frame ends.
    std::optional<tulipa::Task<void>> sender;
    if (c.sender) {
      sender = tulipa::create_task(
          send_loop(ctx, c, [&sock](std::string m) -> tulipa::Coro<void> { co_await sock.send(m); }));
    }
    try {
      for (;;) {
        ws::Message m = co_await sock.receive();
        if (ctx.stop) break;
        feed(ctx, c, m.view());
      }
    } catch (const ws::ConnectionClosed&) {
    }
    if (sender && !sender->done()) {
      sender->cancel();
      try {
        co_await *sender;
      } catch (...) {
      }
    }
  } catch (const ws::ConnectionClosed&) {
  } catch (const std::exception& e) {
    if (!ctx.stop) {
      ++ctx.failed;
      std::fprintf(stderr, "# ws client %d: %s\n", c.id, e.what());
    }
  }
  if (!c.joined && ++ctx.joined == ctx.want_joined) ctx.all_joined.set();
}

// Starts clients [from, to) and waits until they all joined (or failed), keeping at most 256 connects in flight.
tulipa::Coro<void> start_clients(Ctx& ctx, std::deque<Conn>& conns, int count, bool tcp, bool sender, int& next_id) {
  ctx.all_joined.clear();
  ctx.want_joined = ctx.joined + count;
  const int base = ctx.joined;
  for (int i = 0; i < count; ++i) {
    Conn& c = conns.emplace_back();
    c.id = next_id++;
    c.room = c.id % ctx.cfg.rooms;
    c.sender = sender;
    tulipa::create_task(tcp ? tcp_client(ctx, c) : ws_client(ctx, c));
    while (i + 1 - (ctx.joined - base) > 256) co_await tulipa::sleep(std::chrono::milliseconds(1));
  }
  if (ctx.joined < ctx.want_joined) co_await ctx.all_joined.wait();
}

double percentile_ms(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return -1;
  std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k] / 1000.0;
}

// utime + stime of `pid` in seconds.
double cpu_seconds(const std::string& pid) {
  std::ifstream f("/proc/" + pid + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::size_t close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Waits until `done()` or `limit` passed.
template <class F>
tulipa::Coro<void> settle(F done, std::chrono::milliseconds limit) {
  auto until = Clock::now() + limit;
  while (!done() && Clock::now() < until) co_await tulipa::sleep(std::chrono::milliseconds(20));
}

// The flood's probe runs on its own thread with plain blocking sockets, so that its round trips measure the server
// and not this process's loop (busy reading the flood for a thousand clients).
struct Probe {
  std::atomic<bool> ready{false}, failed{false}, measuring{false}, stop{false};
  std::vector<std::uint32_t> rtt_us;  // the probe thread's until it is joined
};

void run_probe(const Config& cfg, const std::string& room, Probe& probe) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(cfg.tcp_port);
  ::inet_pton(AF_INET, cfg.tcp_host.c_str(), &addr.sin_addr);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    probe.failed.store(true);
    ::close(fd);
    return;
  }
  std::string got;
  // Sends `line` and waits (polling, so that `stop` is seen) until `want` arrived; false when stopped or closed.
  auto exchange = [&](const std::string& line, const std::string& want) {
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) return false;
    for (;;) {
      if (got.find(want) != std::string::npos) {
        got.clear();
        return true;
      }
      if (probe.stop.load()) return false;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return false;
      got.append(buf, static_cast<std::size_t>(n));
      if (got.size() > (1 << 20)) got.erase(0, got.size() - 4096);
    }
  };
  if (exchange("/join " + room + "\n", room)) {
    probe.ready.store(true);
    for (std::uint64_t seq = 1; !probe.stop.load(); ++seq) {
      std::string marker = "p=" + std::to_string(seq) + ";";
      auto sent = Clock::now();
      bool answered = exchange(marker + "\n", marker);
      auto waited = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent).count();
      // A round trip still waiting at the end counts with what it waited so far (an unanswered probe is not spared).
      if (probe.measuring.load()) probe.rtt_us.push_back(static_cast<std::uint32_t>(waited));
      if (!answered) break;
    }
  } else {
    probe.failed.store(true);
  }
  ::close(fd);
}

tulipa::Coro<int> run(Config cfg) {
  Ctx ctx;
  ctx.cfg = cfg;
  ctx.members.assign(static_cast<std::size_t>(cfg.rooms), 0);
  std::deque<Conn> conns;  // stable addresses
  int next_id = 1;

  long rss0 = bench::rss_kib(cfg.pid);
  // After each half, 5 s for the server to settle (tulipa-chat gives idle members' buffers back within 4 s).
  co_await start_clients(ctx, conns, cfg.idle / 2, true, false, next_id);
  co_await tulipa::sleep(std::chrono::seconds(5));
  long rss_tcp = bench::rss_kib(cfg.pid);
  co_await start_clients(ctx, conns, cfg.idle - cfg.idle / 2, false, false, next_id);
  co_await tulipa::sleep(std::chrono::seconds(5));
  long rss_idle = bench::rss_kib(cfg.pid);
  int idle_failed = ctx.failed;
  if (cfg.idle_only) {
    std::printf("%-12s idle=%d failed=%d rss_before_kib=%ld bytes_per_idle_tcp=%.0f bytes_per_idle_ws=%.0f\n",
                cfg.name.c_str(), cfg.idle, idle_failed, rss0, (rss_tcp - rss0) * 1024.0 / (cfg.idle / 2),
                (rss_idle - rss_tcp) * 1024.0 / (cfg.idle - cfg.idle / 2));
    std::fflush(stdout);
    auto secs = std::chrono::duration_cast<tulipa::Duration>(std::chrono::duration<double>(cfg.secs));
    co_await tulipa::sleep(secs);
    co_return 0;
  }

  co_await start_clients(ctx, conns, cfg.senders / 2, true, true, next_id);
  co_await start_clients(ctx, conns, cfg.senders - cfg.senders / 2, false, true, next_id);
  ctx.latency_us.clear();
  ctx.delivered = 0;
  double cpu0 = cpu_seconds(cfg.pid);
  auto start = Clock::now();
  ctx.phase = Phase::load;
  {
    auto secs = std::chrono::duration_cast<tulipa::Duration>(std::chrono::duration<double>(cfg.secs));
    co_await tulipa::sleep(secs);
  }
  ctx.phase = Phase::drain;
  co_await settle([&] { return ctx.delivered >= ctx.owed; }, std::chrono::seconds(10));
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu = cpu_seconds(cfg.pid) - cpu0;
  std::uint64_t load_delivered = ctx.delivered, load_owed = ctx.owed;
  double p50 = percentile_ms(ctx.latency_us, 0.50), p99 = percentile_ms(ctx.latency_us, 0.99);
  co_await tulipa::sleep(std::chrono::seconds(5));  // idle again: what the server gave back
  long rss_after = bench::rss_kib(cfg.pid);

  // The flood: a flooder in room 0, a probe alone in its own room (cfg.rooms: no idle client is there).
  ctx.phase = Phase::flood;
  int flood_members = ctx.members[0] + 1;
  ctx.members.push_back(0);
  Conn& flooder = conns.emplace_back();
  flooder.id = next_id++;
  flooder.room = 0;
  Probe probe;
  std::thread probe_thread([&cfg, &probe] { run_probe(cfg, room_name(cfg.rooms), probe); });
  while (!probe.ready.load() && !probe.failed.load()) co_await tulipa::sleep(std::chrono::milliseconds(20));
  std::size_t lines = 0;
  {
    auto pair = co_await tulipa::open_connection(cfg.tcp_host, cfg.tcp_port);
    tulipa::StreamReader reader = std::move(pair.reader);
    tulipa::StreamWriter writer = std::move(pair.writer);
    writer.write("/join " + room_name(0) + "\n");
    tulipa::Task<void> flood_reader = tulipa::create_task([&ctx, &flooder, reader]() mutable -> tulipa::Coro<void> {
      for (;;) {
        tulipa::Bytes d = co_await reader.read(64 * 1024);
        if (d.empty()) co_return;
        feed_lines(ctx, flooder, d.view());
      }
    });
    co_await settle([&] { return flooder.joined; }, std::chrono::seconds(5));
    std::uint64_t before = ctx.flood_delivered;
    std::string flood;
    while (flood.size() < cfg.flood_bytes) {
      flood += "f=" + std::to_string(lines++) + "\n";
    }
    ctx.flood_owed = lines * static_cast<std::uint64_t>(flood_members);
    auto flood_start = Clock::now();
    probe.measuring.store(true);
    writer.write(flood);
    co_await settle([&] { return ctx.flood_delivered - before >= ctx.flood_owed; }, std::chrono::seconds(30));
    ctx.flood_delivered -= before;
    double flood_secs = std::chrono::duration<double>(Clock::now() - flood_start).count();
    probe.stop.store(true);
    probe_thread.join();
    ctx.stop = true;
    flood_reader.cancel();
    writer.close();
    std::printf(
        "%-12s idle=%d failed=%d rss_before_kib=%ld bytes_per_idle_tcp=%.0f bytes_per_idle_ws=%.0f "
        "bytes_per_idle_after_load=%.0f senders=%d rooms=%d secs=%.1f deliveries=%llu deliveries_per_s=%.0f "
        "p50_ms=%.2f p99_ms=%.2f server_cpu_s=%.2f deliveries_per_server_cpu_s=%.0f lost=%lld "
        "flood_lines=%zu flood_members=%d flood_secs=%.2f flood_undelivered=%lld probe_rtts=%zu probe_p50_ms=%.2f "
        "probe_p99_ms=%.2f\n",
        cfg.name.c_str(), cfg.idle, idle_failed, rss0, (rss_tcp - rss0) * 1024.0 / (cfg.idle / 2),
        (rss_idle - rss_tcp) * 1024.0 / (cfg.idle - cfg.idle / 2),
        (rss_after - rss0) * 1024.0 / (cfg.idle + cfg.senders), cfg.senders, cfg.rooms, elapsed,
        static_cast<unsigned long long>(load_delivered), static_cast<double>(load_delivered) / elapsed, p50, p99, cpu,
        cpu > 0 ? static_cast<double>(load_delivered) / cpu : -1,
        static_cast<long long>(load_owed) - static_cast<long long>(load_delivered), lines, flood_members, flood_secs,
        static_cast<long long>(ctx.flood_owed) - static_cast<long long>(ctx.flood_delivered), probe.rtt_us.size(),
        percentile_ms(probe.rtt_us, 0.5), percentile_ms(probe.rtt_us, 0.99));
    std::fflush(stdout);
  }
  co_return 0;
}

bool parse_host_port(std::string_view v, std::string& host, std::uint16_t& port) {
  std::size_t colon = v.rfind(':');
  if (colon == std::string_view::npos) return false;
  host = std::string(v.substr(0, colon));
  auto [end, ec] = std::from_chars(v.data() + colon + 1, v.data() + v.size(), port);
  return ec == std::errc() && end == v.data() + v.size();
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view k = argv[i], v = argv[i + 1];
    bool ok = true;
    if (k == "--tcp") {
      ok = parse_host_port(v, cfg.tcp_host, cfg.tcp_port);
    } else if (k == "--ws") {
      cfg.ws_url = v;
    } else if (k == "--pid") {
      cfg.pid = v;
    } else if (k == "--name") {
      cfg.name = v;
    } else if (k == "--idle") {
      cfg.idle = std::atoi(argv[i + 1]);
    } else if (k == "--senders") {
      cfg.senders = std::atoi(argv[i + 1]);
    } else if (k == "--rooms") {
      cfg.rooms = std::atoi(argv[i + 1]);
    } else if (k == "--secs") {
      cfg.secs = std::atof(argv[i + 1]);
    } else if (k == "--idle-only") {
      cfg.idle_only = v == "1";
    } else if (k == "--flood-bytes") {
      cfg.flood_bytes = static_cast<std::size_t>(std::atol(argv[i + 1]));
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "chat_load: bad option %s %s\n", argv[i], argv[i + 1]);
      return 2;
    }
  }
  if (cfg.idle < 2 || cfg.senders < 2 || cfg.rooms < 1) {
    std::fprintf(stderr, "chat_load: --idle and --senders need at least 2, --rooms 1\n");
    return 2;
  }
  return tulipa::run(run(cfg));
}
