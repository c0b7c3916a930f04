// chat_load: the chat's load tool (issue 11). Drives one chat server (tulipa-chat, or the Node and Python peers in
// bench/chat/) with idle and active clients, on both of its doors, and prints one row of key=value figures:
//
//   chat_load --tcp HOST:PORT --ws ws://HOST:PORT/ws --pid PID [--idle N] [--senders N] [--rooms N] [--secs S]
//             [--flood-bytes B] [--name NAME] [--idle-only 1] [--threads T]
//
// The clients are spread over T loops, each on a thread of its own (LoopGroup; default: the CPUs this process may
// use), so that the tool reads what the server sends as fast as the server sends it: with one loop, the flood's
// 9.6 M deliveries were read far slower than the server wrote them, and latencies were the tool's queueing. A
// thread of its own coordinates the phases, reads the server's figures and runs the flooder.
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
//    members), while a probe client alone in its own room measures round trips of its own messages: probe_p99_ms,
//    from the flood's first byte until the server broadcast its last line (the flooder got it back), one probe line
//    every 5 ms whatever the answers (open loop, see run_probe).
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
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

#include "proc_status.hpp"
#include "tulipa/http/websocket.hpp"
#include "tulipa/loop_group.hpp"
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
  int threads = 0;         // loops for the clients (0: the CPUs this process may use)
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

// What every loop sees.
struct Shared {
  Config cfg;
  std::atomic<Phase> phase{Phase::connect};
  std::atomic<bool> stop{false};
  Clock::time_point t0 = Clock::now();
  std::unique_ptr<std::atomic<int>[]> members;  // per room (and the probe's): clients that joined it
};

// One loop's clients and counters. The loop's thread alone writes them; the coordinator reads the atomics, and
// the rest through on_workers() (on the loop's thread).
struct Ctx {
  Shared* sh = nullptr;
  tulipa::EventLoop* loop = nullptr;
  std::deque<Conn> conns;  // stable addresses
  std::atomic<int> joined{0}, failed{0};
  std::atomic<std::uint64_t> delivered{0}, owed{0}, flood_delivered{0};
  std::vector<std::uint32_t> latency_us;
};

void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) {
  counter.fetch_add(by, std::memory_order_relaxed);
}

std::string room_name(int r) {
  char b[16];
  std::snprintf(b, sizeof b, "bench%03d", r);
  return b;
}

std::uint64_t now_us(const Ctx& c) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.sh->t0).count());
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
    ctx.sh->members[static_cast<std::size_t>(c.room)].fetch_add(1);
    ctx.joined.fetch_add(1);
  }
  std::uint64_t now = now_us(ctx);
  for (std::size_t at = text.find("t="); at != std::string_view::npos; at = text.find("t=", at + 2)) {
    if (at > 0 && text[at - 1] != ' ' && text[at - 1] != '"' && text[at - 1] != '>') continue;
    std::uint64_t t = number_after(text, at + 2);
    std::size_t s_at = text.find(" s=", at), q_at = text.find(" q=", at);
    if (s_at == std::string_view::npos || q_at == std::string_view::npos) continue;
    std::uint64_t s = number_after(text, s_at + 3), q = number_after(text, q_at + 3);
    bump(ctx.delivered);
    ctx.latency_us.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(now - t, UINT32_MAX)));
    if (s == static_cast<std::uint64_t>(c.id) && q == c.seq && c.wake) {
      c.echoed = true;
      c.wake->set();
    }
  }
  for (std::size_t at = text.find("f="); at != std::string_view::npos; at = text.find("f=", at + 2))
    bump(ctx.flood_delivered);
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
  while (ctx.sh->phase.load() == Phase::connect) co_await tulipa::sleep(std::chrono::milliseconds(10));
  try {
    while (ctx.sh->phase.load() == Phase::load) {
      bump(ctx.owed, static_cast<std::uint64_t>(ctx.sh->members[static_cast<std::size_t>(c.room)].load()));
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
    auto pair = co_await tulipa::open_connection(ctx.sh->cfg.tcp_host, ctx.sh->cfg.tcp_port);
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
      if (data.empty() || ctx.sh->stop.load()) break;
      feed_lines(ctx, c, data.view());
    }
    if (sender) sender->cancel();
  } catch (const std::exception& e) {
    if (!ctx.sh->stop.load()) {
      ctx.failed.fetch_add(1);
      std::fprintf(stderr, "# tcp client %d: %s\n", c.id, e.what());
    }
  }
  if (!c.joined) ctx.joined.fetch_add(1);  // a failed client does not hold the rest
}

tulipa::Coro<void> ws_client(Ctx& ctx, Conn& c) {
  try {
    ws::WebSocket sock = co_await ws::connect(ctx.sh->cfg.ws_url);
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
        if (ctx.sh->stop.load()) break;
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
    if (!ctx.sh->stop.load()) {
      ctx.failed.fetch_add(1);
      std::fprintf(stderr, "# ws client %d: %s\n", c.id, e.what());
    }
  }
  if (!c.joined) ctx.joined.fetch_add(1);
}

// Starts `count` clients with ids from `first` on this loop, keeping at most 256 connects in flight.
tulipa::Coro<void> start_clients(Ctx& ctx, int count, bool tcp, bool sender, int first) {
  const int base = ctx.joined.load();
  for (int i = 0; i < count; ++i) {
    Conn& c = ctx.conns.emplace_back();
    c.id = first + i;
    c.room = c.id % ctx.sh->cfg.rooms;
    c.sender = sender;
    tulipa::create_task(*ctx.loop, tcp ? tcp_client(ctx, c) : ws_client(ctx, c));
    while (i + 1 - (ctx.joined.load() - base) > 256) co_await tulipa::sleep(std::chrono::milliseconds(1));
  }
}

// The client loops, and the coordinator's way to them.
struct Workers {
  std::vector<std::unique_ptr<Ctx>> ctx;
  std::optional<tulipa::LoopGroup> group;
  int next_id = 1;

  template <class F>
  std::uint64_t sum(F field) const {
    std::uint64_t n = 0;
    for (const auto& c : ctx) n += static_cast<std::uint64_t>(field(*c).load());
    return n;
  }
  // Runs f(ctx) on each loop's thread; returns once every one ran.
  template <class F>
  tulipa::Coro<void> on_workers(F f) {
    auto ran = std::make_shared<std::atomic<std::size_t>>(0);
    for (std::size_t i = 0; i < ctx.size(); ++i) {
      Ctx* c = ctx[i].get();
      c->loop->call_soon_threadsafe([c, f, ran] {
        f(*c);
        ran->fetch_add(1);
      });
    }
    while (ran->load() < ctx.size()) co_await tulipa::sleep(std::chrono::milliseconds(1));
  }
  // Starts `count` clients spread over the loops and waits until they all joined (or failed).
  tulipa::Coro<void> start(int count, bool tcp, bool sender) {
    std::uint64_t want =
        sum([](const Ctx& c) -> const std::atomic<int>& { return c.joined; }) + static_cast<std::uint64_t>(count);
    const int n = static_cast<int>(ctx.size());
    for (int i = 0; i < n; ++i) {
      int share = count / n + (i < count % n ? 1 : 0);
      int first = next_id;
      next_id += share;
      Ctx* c = ctx[static_cast<std::size_t>(i)].get();
      c->loop->call_soon_threadsafe([c, share, tcp, sender, first] {
        tulipa::create_task(*c->loop, start_clients(*c, share, tcp, sender, first));
      });
    }
    while (sum([](const Ctx& c) -> const std::atomic<int>& { return c.joined; }) < want)
      co_await tulipa::sleep(std::chrono::milliseconds(5));
  }
  int failed() const {
    return static_cast<int>(sum([](const Ctx& c) -> const std::atomic<int>& { return c.failed; }));
  }
  std::uint64_t delivered() const {
    return sum([](const Ctx& c) -> const std::atomic<std::uint64_t>& { return c.delivered; });
  }
};

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
// and not this process's loops. It is open-loop: while `measuring` it sends a line every `probe_interval` whether or
// not the previous ones came back, so that a slow answer is not sampled less often than fast ones (closed-loop
// probing would hide the stalls it is there to find), and records each line's round trip.
constexpr auto probe_interval = std::chrono::milliseconds(5);

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
  std::deque<std::pair<std::uint64_t, Clock::time_point>> waiting;  // lines sent, by seq, not answered yet
  std::uint64_t seq = 0;
  auto next_send = Clock::now();
  bool joined = false;
  std::string join = "/join " + room + "\n";
  if (::send(fd, join.data(), join.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(join.size())) probe.failed.store(true);
  while (!probe.stop.load() && !probe.failed.load()) {
    auto now = Clock::now();
    if (joined && probe.measuring.load() && now >= next_send) {
      std::string line = "p=" + std::to_string(++seq) + ";\n";
      if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) break;
      waiting.emplace_back(seq, now);
      next_send = now + probe_interval;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
    if (!joined && got.find(room) != std::string::npos) {
      joined = true;
      probe.ready.store(true);
    }
    now = Clock::now();
    for (std::size_t at = got.find("p="); at != std::string::npos; at = got.find("p=", at + 2)) {
      std::size_t end = got.find(';', at);
      if (end == std::string::npos) break;
      std::uint64_t answered = number_after(got, at + 2);
      while (!waiting.empty() && waiting.front().first <= answered) {
        if (waiting.front().first == answered) {
          probe.rtt_us.push_back(static_cast<std::uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(now - waiting.front().second).count()));
        }
        waiting.pop_front();
      }
    }
    std::size_t keep = got.rfind('\n');
    if (keep != std::string::npos) got.erase(0, keep + 1);
  }
  // A line still waiting at the end counts with what it waited so far (an unanswered probe is not spared).
  auto end = Clock::now();
  for (auto& [s, sent] : waiting) {
    probe.rtt_us.push_back(
        static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(end - sent).count()));
  }
  if (!joined) probe.failed.store(true);
  ::close(fd);
}

tulipa::Coro<int> run(Config cfg) {
  Shared sh;
  sh.cfg = cfg;
  sh.members = std::make_unique<std::atomic<int>[]>(static_cast<std::size_t>(cfg.rooms) + 1);
  Workers w;
  std::size_t threads = cfg.threads > 0 ? static_cast<std::size_t>(cfg.threads) : tulipa::available_cores();
  for (std::size_t i = 0; i < threads; ++i) {
    w.ctx.push_back(std::make_unique<Ctx>());
    w.ctx.back()->sh = &sh;
  }
  w.group.emplace(threads, [](tulipa::EventLoop&, std::size_t) {});
  for (std::size_t i = 0; i < threads; ++i) w.ctx[i]->loop = &w.group->loop(i);  // read on the loops after this
  // The clients' loops stop (and their tasks go) before the contexts they point to.
  struct Stop {
    Workers& w;
    Shared& sh;
    ~Stop() {
      sh.stop.store(true);
      w.group.reset();
    }
  } stop_workers{w, sh};

  long rss0 = bench::rss_kib(cfg.pid);
  // After each half, 5 s for the server to settle (tulipa-chat gives idle members' buffers back within 4 s).
  co_await w.start(cfg.idle / 2, true, false);
  co_await tulipa::sleep(std::chrono::seconds(5));
  long rss_tcp = bench::rss_kib(cfg.pid);
  co_await w.start(cfg.idle - cfg.idle / 2, false, false);
  co_await tulipa::sleep(std::chrono::seconds(5));
  long rss_idle = bench::rss_kib(cfg.pid);
  int idle_failed = w.failed();
  if (cfg.idle_only) {
    std::printf("%-12s idle=%d failed=%d rss_before_kib=%ld bytes_per_idle_tcp=%.0f bytes_per_idle_ws=%.0f\n",
                cfg.name.c_str(), cfg.idle, idle_failed, rss0, (rss_tcp - rss0) * 1024.0 / (cfg.idle / 2),
                (rss_idle - rss_tcp) * 1024.0 / (cfg.idle - cfg.idle / 2));
    std::fflush(stdout);
    auto secs = std::chrono::duration_cast<tulipa::Duration>(std::chrono::duration<double>(cfg.secs));
    co_await tulipa::sleep(secs);
    co_return 0;
  }

  co_await w.start(cfg.senders / 2, true, true);
  co_await w.start(cfg.senders - cfg.senders / 2, false, true);
  co_await w.on_workers([](Ctx& c) {
    c.latency_us.clear();
    c.delivered.store(0);
  });
  double cpu0 = cpu_seconds(cfg.pid);
  auto start = Clock::now();
  sh.phase.store(Phase::load);
  {
    auto secs = std::chrono::duration_cast<tulipa::Duration>(std::chrono::duration<double>(cfg.secs));
    co_await tulipa::sleep(secs);
  }
  sh.phase.store(Phase::drain);
  auto owed = [&w] { return w.sum([](const Ctx& c) -> const std::atomic<std::uint64_t>& { return c.owed; }); };
  co_await settle([&] { return w.delivered() >= owed(); }, std::chrono::seconds(10));
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu = cpu_seconds(cfg.pid) - cpu0;
  std::uint64_t load_delivered = w.delivered(), load_owed = owed();
  std::vector<std::uint32_t> latency_us;
  std::mutex latency_lock;
  co_await w.on_workers([&](Ctx& c) {
    std::lock_guard lock(latency_lock);
    latency_us.insert(latency_us.end(), c.latency_us.begin(), c.latency_us.end());
    c.latency_us.clear();
  });
  double p50 = percentile_ms(latency_us, 0.50), p99 = percentile_ms(latency_us, 0.99);
  co_await tulipa::sleep(std::chrono::seconds(5));  // idle again: what the server gave back
  long rss_after = bench::rss_kib(cfg.pid);

  // The flood: a flooder in room 0 (on this thread), a probe alone in its own room (cfg.rooms: no idle client is
  // there).
  sh.phase.store(Phase::flood);
  int flood_members = sh.members[0].load() + 1;
  Ctx flood_ctx;
  flood_ctx.sh = &sh;
  flood_ctx.loop = &tulipa::get_running_loop();
  Conn& flooder = flood_ctx.conns.emplace_back();
  flooder.id = w.next_id++;
  flooder.room = 0;
  auto flood_delivered = [&] {
    return w.sum([](const Ctx& c) -> const std::atomic<std::uint64_t>& { return c.flood_delivered; }) +
           flood_ctx.flood_delivered.load();
  };
  Probe probe;
  std::thread probe_thread([&cfg, &probe] { run_probe(cfg, room_name(cfg.rooms), probe); });
  while (!probe.ready.load() && !probe.failed.load()) co_await tulipa::sleep(std::chrono::milliseconds(20));
  std::size_t lines = 0;
  {
    auto pair = co_await tulipa::open_connection(cfg.tcp_host, cfg.tcp_port);
    tulipa::StreamReader reader = std::move(pair.reader);
    tulipa::StreamWriter writer = std::move(pair.writer);
    writer.write("/join " + room_name(0) + "\n");
    // The probe measures while the server handles the flood: until the flooder got its own last line back.
    std::uint64_t flood_lines = 0;
    Clock::time_point flood_broadcast{};  // when the flooder got its last line back
    tulipa::Task<void> flood_reader = tulipa::create_task(
        [&flood_ctx, &flooder, &probe, &flood_lines, &flood_broadcast, reader]() mutable -> tulipa::Coro<void> {
          for (;;) {
            tulipa::Bytes d = co_await reader.read(64 * 1024);
            if (d.empty()) co_return;
            feed_lines(flood_ctx, flooder, d.view());
            if (flood_lines > 0 && flood_ctx.flood_delivered.load() >= flood_lines && probe.measuring.load()) {
              probe.measuring.store(false);
              flood_broadcast = Clock::now();
            }
          }
        });
    co_await settle([&] { return flooder.joined; }, std::chrono::seconds(5));
    std::uint64_t before = flood_delivered();
    std::string flood;
    while (flood.size() < cfg.flood_bytes) {
      flood += "f=" + std::to_string(lines++) + "\n";
    }
    flood_lines = lines;
    std::uint64_t flood_owed = lines * static_cast<std::uint64_t>(flood_members);
    double flood_cpu0 = cpu_seconds(cfg.pid);
    auto flood_start = Clock::now();
    probe.measuring.store(true);
    writer.write(flood);
    co_await settle([&] { return flood_delivered() - before >= flood_owed; }, std::chrono::seconds(30));
    std::uint64_t flood_seen = flood_delivered() - before;
    double flood_secs = std::chrono::duration<double>(Clock::now() - flood_start).count();
    probe.measuring.store(false);
    double flood_cpu = cpu_seconds(cfg.pid) - flood_cpu0;
    double broadcast_secs = flood_broadcast == Clock::time_point{}
                                ? -1
                                : std::chrono::duration<double>(flood_broadcast - flood_start).count();
    probe.stop.store(true);
    probe_thread.join();
    sh.stop.store(true);
    flood_reader.cancel();
    writer.close();
    std::printf(
        "%-12s idle=%d failed=%d rss_before_kib=%ld bytes_per_idle_tcp=%.0f bytes_per_idle_ws=%.0f "
        "bytes_per_idle_after_load=%.0f senders=%d rooms=%d threads=%zu secs=%.1f deliveries=%llu "
        "deliveries_per_s=%.0f p50_ms=%.2f p99_ms=%.2f server_cpu_s=%.2f deliveries_per_server_cpu_s=%.0f lost=%lld "
        "flood_lines=%zu flood_members=%d flood_secs=%.2f flood_broadcast_secs=%.2f flood_server_cpu_s=%.2f "
        "flood_undelivered=%lld "
        "probe_rtts=%zu probe_p50_ms=%.2f "
        "probe_p99_ms=%.2f\n",
        cfg.name.c_str(), cfg.idle, idle_failed, rss0, (rss_tcp - rss0) * 1024.0 / (cfg.idle / 2),
        (rss_idle - rss_tcp) * 1024.0 / (cfg.idle - cfg.idle / 2),
        (rss_after - rss0) * 1024.0 / (cfg.idle + cfg.senders), cfg.senders, cfg.rooms, threads, elapsed,
        static_cast<unsigned long long>(load_delivered), static_cast<double>(load_delivered) / elapsed, p50, p99, cpu,
        cpu > 0 ? static_cast<double>(load_delivered) / cpu : -1,
        static_cast<long long>(load_owed) - static_cast<long long>(load_delivered), lines, flood_members, flood_secs,
        broadcast_secs, flood_cpu, static_cast<long long>(flood_owed) - static_cast<long long>(flood_seen),
        probe.rtt_us.size(), percentile_ms(probe.rtt_us, 0.5), percentile_ms(probe.rtt_us, 0.99));
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
    } else if (k == "--threads") {
      cfg.threads = std::atoi(argv[i + 1]);
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
