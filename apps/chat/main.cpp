// tulipa-chat: the chat server. `tulipa-chat --help` lists the options; README.md says how to talk to it.
//
// SIGTERM or SIGINT: stop accepting, tell every client, let the store write what it accepted, exit 0.
// --loops N: N loops (LoopGroup), each with its hub and listeners on the same ports (SO_REUSEPORT); loop 0 binds
// first (a port 0 becomes the others' port) and takes the signals. The hubs share the rooms through one SQLite writer
// (store/sqlite_store.hpp) or, on PostgreSQL (a connection per loop), through bus/loop_bus.hpp; with --redis, each
// loop is also an instance for Redis (bus/redis_bus.hpp).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <future>
#include <latch>
#include <memory>

#include "bus/loop_bus.hpp"
#include "bus/redis_bus.hpp"
#include "core/hub.hpp"
#include "core/text.hpp"
#include "options.hpp"
#include "store/pg_store.hpp"
#include "store/sqlite_store.hpp"
#include "tcp/line_server.hpp"
#include "tulipa/cancel.hpp"
#include "tulipa/loop_group.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/timeout.hpp"
#include "tulipa/tls.hpp"
#include "web/web_server.hpp"

namespace {

bool is_sqlite(const std::string& spec) { return spec.starts_with("sqlite:"); }

// `writer`: the SQLite writer of every loop (made before the loops, for a sqlite: store); `lane`: this loop's.
tulipa::Coro<std::unique_ptr<chat::Store>> open_store(tulipa::EventLoop& loop, std::string spec,
                                                      chat::SqliteWriter* writer, std::size_t lane) {
  if (spec == "memory:") co_return std::make_unique<chat::MemoryStore>(loop);
  if (spec.starts_with("postgres://") || spec.starts_with("postgresql://")) {
    std::unique_ptr<chat::PgStore> pg = co_await chat::PgStore::open(spec);
    co_return pg;
  }
  co_return std::make_unique<chat::SqliteStore>(loop, *writer, lane);
}

// The SQLite writer (sqlite_store.hpp) for a sqlite: store, else null; prints why it cannot open the file.
// `others`: where loop i's hub gets the room messages the other loops stored (--loops N).
std::unique_ptr<chat::SqliteWriter> open_writer(const chat::Options& options, chat::SqliteWriter::Others others = {}) {
  if (!is_sqlite(options.store)) return nullptr;
  try {
    return std::make_unique<chat::SqliteWriter>(options.store.substr(std::string_view("sqlite:").size()), options.loops,
                                                std::move(others));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa-chat: %s\n", e.what());
    return nullptr;
  }
}

// --loops N --redis on PostgreSQL: what a hub stored goes to the other loops (in-process) and to the other instances
// (Redis). With SQLite, the writer hands the other loops what any loop stored, so Redis is the hub's only bus.
class BothBuses final : public chat::Bus {
 public:
  BothBuses(chat::Bus& loops, chat::Bus& instances) : loops_(loops), instances_(instances) {}
  void publish(const chat::Message& m) override {
    loops_.publish(m);
    instances_.publish(m);
  }

 private:
  chat::Bus& loops_;
  chat::Bus& instances_;
};

// share/tulipa-chat/web beside an installed binary (bin/tulipa-chat), else the source tree's page.
std::string default_web_root() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    std::filesystem::path installed = exe.parent_path().parent_path() / "share" / "tulipa-chat" / "web";
    if (std::filesystem::exists(installed / "index.html")) return installed.string();
  }
  return TULIPA_CHAT_SOURCE_WEB;
}

// What the loops of --loops N share. stops[i] and stop_asked[i] are touched on loop i only.
struct Loops {
  Loops(tulipa::LoopGroup& group, chat::LoopHubs& hubs)
      : group(group),
        hubs(hubs),
        stops(group.size()),
        stop_asked(group.size()),
        finished(static_cast<std::ptrdiff_t>(group.size())),
        not_listening(group.size()) {}
  // Any thread: every loop's serve() stops.
  void stop_all() {
    for (std::size_t i = 0; i < group.size(); ++i) {
      group.loop(i).call_soon_threadsafe([this, i] {
        stop_asked[i] = 1;
        if (stops[i]) stops[i]->set();
      });
    }
  }
  // Any loop, once: this loop listens, or gave up before it could. The last one wakes loop 0, which announces the
  // ports only then: SO_REUSEPORT spreads connections over the sockets already listening, so an announcement made
  // when loop 0 alone listened sent every early client to loop 0 (a PostgreSQL connection per loop made that long).
  void listening() {
    if (not_listening.fetch_sub(1) == 1) {
      group.loop(0).call_soon_threadsafe([this] {
        all_listening_seen = true;
        if (all_listening) all_listening->set();
      });
    }
  }
  tulipa::LoopGroup& group;
  chat::LoopHubs& hubs;
  std::vector<tulipa::Event*> stops;
  std::vector<char> stop_asked;
  std::promise<std::pair<std::uint16_t, std::uint16_t>> ports;  // loop 0's, once it listens ({0, 0}: it failed)
  std::latch finished;
  std::atomic<int> code{0};
  std::atomic<std::size_t> not_listening;
  tulipa::Event* all_listening = nullptr;  // loop 0's, touched on loop 0 only (as all_listening_seen)
  bool all_listening_seen = false;
};

// One loop's server: alone (`loops` null), or loop `index` of --loops N. `writer`: every loop's SQLite writer
// (null for the other stores).
tulipa::Coro<int> serve(chat::Options options, chat::SqliteWriter* writer, Loops* loops = nullptr,
                        std::size_t index = 0) {
  tulipa::EventLoop& loop = tulipa::get_running_loop();
  bool first = index == 0;
  // Loop 0 tells the others where to listen, or that it failed.
  struct Published {
    Loops* loops;
    bool first;
    bool done = false;
    void operator()(std::uint16_t tcp, std::uint16_t http) {
      if (loops && first && !done) loops->ports.set_value({tcp, http});
      done = true;
    }
    ~Published() { (*this)(0, 0); }
  } publish_ports{loops, first};
  // Every loop tells Loops once that it listens, or (on its way out) that it never will.
  struct Listening {
    Loops* loops;
    bool done = false;
    void operator()() {
      if (loops && !done) loops->listening();
      done = true;
    }
    ~Listening() { (*this)(); }
  } mark_listening{loops};
  std::unique_ptr<chat::Store> store;
  std::optional<tulipa::SslContext> tls, web_tls;
  try {
    tulipa::Coro<std::unique_ptr<chat::Store>> opening = open_store(loop, options.store, writer, index);
    store = co_await std::move(opening);
    if (!options.tls_cert.empty()) {
      tls = tulipa::SslContext::server(options.tls_cert, options.tls_key);
      // The page's own context: it offers ALPN http/1.1, which line clients have no use for.
      web_tls = tulipa::SslContext::server(options.tls_cert, options.tls_key);
      web_tls->set_alpn_protocols({"http/1.1"});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa-chat: %s\n", e.what());
    co_return 1;
  }
  chat::Hub hub(loop, *store, options.limits);
  try {
    co_await hub.load_history();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa-chat: cannot read the history: %s\n", e.what());
    co_return 1;
  }
  // --loops: the other loops' messages come once the history is loaded (through the SQLite writer, or through the
  // loop bus for PostgreSQL); what came before is read from the store.
  std::unique_ptr<chat::LoopBus> loop_bus;
  if (loops) {
    loop_bus = std::make_unique<chat::LoopBus>(loop, loops->hubs, index);
    if (!writer) hub.set_bus(loop_bus.get());
    hub.set_directory(loop_bus.get());
    loops->hubs.set_hub(index, &hub);
    hub.resync();
  }
  // Scale-out: the other instances' messages come through Redis once the history is loaded. Under --loops, each
  // loop is an instance of its own for Redis (redis_bus.hpp says why).
  std::unique_ptr<chat::RedisBus> bus;
  std::unique_ptr<BothBuses> both;
  if (!options.redis.empty()) {
    try {
      bus = std::make_unique<chat::RedisBus>(loop, hub, options.redis, std::chrono::seconds(options.redis_liveness));
      co_await bus->start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tulipa-chat: cannot use Redis at %s: %s\n", options.redis.c_str(), e.what());
      co_return 1;
    }
    if (loops && !writer) both = std::make_unique<BothBuses>(*loop_bus, *bus);
    hub.set_bus(both ? static_cast<chat::Bus*>(both.get()) : bus.get());
    hub.set_directory(bus.get());
  }

  tulipa::Server tcp;
  try {
    tcp =
        chat::start_line_server(loop, hub, options.tcp.host, options.tcp.port, tls ? &*tls : nullptr, loops != nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa-chat: cannot listen on %s:%u: %s\n", options.tcp.host.c_str(), options.tcp.port,
                 e.what());
    co_return 1;
  }
  chat::WebServer web;
  try {
    chat::WebOptions web_options{options.web_root.empty() ? default_web_root() : options.web_root,
                                 options.allowed_origins, options.ws_deflate, web_tls ? &*web_tls : nullptr,
                                 loops != nullptr};
    web = chat::start_web_server(loop, hub, options.http.host, options.http.port, web_options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa-chat: cannot serve the page on %s:%u: %s\n", options.http.host.c_str(),
                 options.http.port, e.what());
    co_return 1;
  }
  std::uint16_t port = tcp.sockets().at(0).port();
  std::uint16_t http_port = web.port();
  publish_ports(port, http_port);
  mark_listening();
  if (loops && first) {
    tulipa::Event all_listening;
    loops->all_listening = &all_listening;
    if (!loops->all_listening_seen) co_await all_listening.wait();
    loops->all_listening = nullptr;
  }
  if (first && loops) std::printf("tulipa-chat: %zu loops sharing the rooms\n", loops->group.size());
  if (first) std::printf("tulipa-chat: history in %s\n", store->describe().c_str());
  if (first && bus) std::printf("tulipa-chat: rooms shared with other instances through %s\n", options.redis.c_str());
  if (first)
    std::printf("tulipa-chat: line clients on %s:%u%s: %s %s %u\n", options.tcp.host.c_str(), port, tls ? " (TLS)" : "",
                tls ? "openssl s_client -quiet -connect" : "nc",
                options.tcp.host.empty() ? "127.0.0.1" : options.tcp.host.c_str(), port);
  if (first)
    std::printf("tulipa-chat: browsers on %s://%s:%u/\n", web.encrypted() ? "https" : "http",
                options.http.host.empty() ? "127.0.0.1" : options.http.host.c_str(), http_port);
  std::fflush(stdout);

  tulipa::Event stop;
  if (first) {
    loop.add_signal_handler(SIGTERM, [&] { loops ? loops->stop_all() : stop.set(); });
    loop.add_signal_handler(SIGINT, [&] { loops ? loops->stop_all() : stop.set(); });
  }
  if (loops) {
    loops->stops[index] = &stop;
    if (loops->stop_asked[index]) stop.set();
  }
  co_await stop.wait();
  if (loops) loops->stops[index] = nullptr;
  if (first) {
    loop.remove_signal_handler(SIGTERM);
    loop.remove_signal_handler(SIGINT);
  }

  // Stop accepting, tell the clients, write what the store accepted, then wait (bounded) for the clients to go.
  tcp.close();
  tulipa::Future<void> web_closed = web.shutdown(options.limits.close_grace);
  hub.shutdown("the server is shutting down");
  tulipa::Event flushed;
  store->flush([&] { flushed.set(); });
  co_await flushed.wait();
  if (bus) {
    co_await bus->stop(options.limits.close_grace);
    hub.set_bus(nullptr);
    hub.set_directory(nullptr);
  }
  if (loops) {
    loops->hubs.set_hub(index, nullptr);
    hub.set_bus(nullptr);
    hub.set_directory(nullptr);
  }
  try {
    co_await tulipa::wait_for(tcp.wait_closed(), options.limits.close_grace * 2);
  } catch (const tulipa::TimeoutError&) {
    tcp.abort_clients();
  }
  co_await web_closed;
  hub.log_to_stderr("stopped");
  co_return 0;
}

}  // namespace

tulipa::Coro<void> serve_loop(chat::Options options, chat::SqliteWriter* writer, Loops& loops, std::size_t index) {
  int code = co_await serve(std::move(options), writer, &loops, index);
  if (code != 0) {
    loops.code.store(code);
    loops.stop_all();
  }
  loops.finished.count_down();
}

int serve_loops(chat::Options options) {
  tulipa::LoopGroup group(options.loops, [](tulipa::EventLoop&, std::size_t) {});
  std::vector<tulipa::EventLoop*> all;
  for (std::size_t i = 0; i < group.size(); ++i) all.push_back(&group.loop(i));
  chat::LoopHubs hubs(all);
  Loops loops(group, hubs);
  // SQLite: one writer for every loop, which hands each loop the room messages the others stored. Destroyed after
  // the group joined (its boxes are drained on the loops until their last pass).
  std::unique_ptr<chat::SqliteWriter> writer =
      open_writer(options, [&hubs](std::size_t i, chat::Message&& m) { hubs.deliver(i, std::move(m)); });
  if (is_sqlite(options.store) && !writer) {
    group.stop();
    group.join();
    return 1;
  }
  auto start = [&](std::size_t i, chat::Options o) {
    group.loop(i).call_soon_threadsafe([&loops, &group, i, w = writer.get(), o = std::move(o)]() mutable {
      tulipa::create_task(group.loop(i), serve_loop(std::move(o), w, loops, i));
    });
  };
  std::future<std::pair<std::uint16_t, std::uint16_t>> ports = loops.ports.get_future();
  start(0, options);
  auto [tcp, http] = ports.get();
  if (tcp == 0) {
    for (std::size_t i = 1; i < group.size(); ++i) loops.finished.count_down();
  } else {
    options.tcp.port = tcp;
    options.http.port = http;
    for (std::size_t i = 1; i < group.size(); ++i) start(i, options);
  }
  loops.finished.wait();
  group.stop();
  group.join();
  return loops.code.load();
}

int main(int argc, char** argv) {
  chat::Parsed parsed = chat::parse_options(argc, argv);
  if (!parsed.options) return parsed.exit_code;
  if (parsed.options->loops > 1) return serve_loops(std::move(*parsed.options));
  // Made before the loop and destroyed after it (sqlite_store.hpp).
  std::unique_ptr<chat::SqliteWriter> writer = open_writer(*parsed.options);
  if (is_sqlite(parsed.options->store) && !writer) return 1;
  return tulipa::run(serve(std::move(*parsed.options), writer.get()));
}
