// tulipa-chat: the chat server. `tulipa-chat --help` lists the options; README.md says how to talk to it.
//
// SIGTERM or SIGINT: stop accepting, tell every client, let the store write what it accepted, exit 0.
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>

#include "bus/redis_bus.hpp"
#include "core/hub.hpp"
#include "core/text.hpp"
#include "options.hpp"
#include "store/pg_store.hpp"
#include "store/sqlite_store.hpp"
#include "tcp/line_server.hpp"
#include "tulipa/cancel.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/timeout.hpp"
#include "tulipa/tls.hpp"
#include "web/web_server.hpp"

namespace {

tulipa::Coro<std::unique_ptr<chat::Store>> open_store(tulipa::EventLoop& loop, std::string spec) {
  if (spec == "memory:") co_return std::make_unique<chat::MemoryStore>(loop);
  if (spec.starts_with("postgres://") || spec.starts_with("postgresql://")) {
    std::unique_ptr<chat::PgStore> pg = co_await chat::PgStore::open(spec);
    co_return pg;
  }
  co_return std::make_unique<chat::SqliteStore>(loop, spec.substr(std::string_view("sqlite:").size()));
}

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

tulipa::Coro<int> serve(chat::Options options) {
  tulipa::EventLoop& loop = tulipa::get_running_loop();
  std::unique_ptr<chat::Store> store;
  std::optional<tulipa::SslContext> tls, web_tls;
  try {
    tulipa::Coro<std::unique_ptr<chat::Store>> opening = open_store(loop, options.store);
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
  // Scale-out: the other instances' messages come through Redis once the history is loaded.
  std::unique_ptr<chat::RedisBus> bus;
  if (!options.redis.empty()) {
    try {
      bus = std::make_unique<chat::RedisBus>(loop, hub, options.redis, std::chrono::seconds(options.redis_liveness));
      co_await bus->start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tulipa-chat: cannot use Redis at %s: %s\n", options.redis.c_str(), e.what());
      co_return 1;
    }
    hub.set_bus(bus.get());
    hub.set_directory(bus.get());
  }

  tulipa::Server tcp;
  try {
    tcp = chat::start_line_server(loop, hub, options.tcp.host, options.tcp.port, tls ? &*tls : nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa-chat: cannot listen on %s:%u: %s\n", options.tcp.host.c_str(), options.tcp.port,
                 e.what());
    co_return 1;
  }
  chat::WebServer web;
  try {
    chat::WebOptions web_options{options.web_root.empty() ? default_web_root() : options.web_root,
                                 options.allowed_origins, options.ws_deflate, web_tls ? &*web_tls : nullptr};
    web = chat::start_web_server(loop, hub, options.http.host, options.http.port, web_options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa-chat: cannot serve the page on %s:%u: %s\n", options.http.host.c_str(),
                 options.http.port, e.what());
    co_return 1;
  }
  std::uint16_t port = tcp.sockets().at(0).port();
  std::uint16_t http_port = web.port();
  std::printf("tulipa-chat: history in %s\n", store->describe().c_str());
  if (bus) std::printf("tulipa-chat: rooms shared with other instances through %s\n", options.redis.c_str());
  std::printf("tulipa-chat: line clients on %s:%u%s: %s %s %u\n", options.tcp.host.c_str(), port, tls ? " (TLS)" : "",
              tls ? "openssl s_client -quiet -connect" : "nc",
              options.tcp.host.empty() ? "127.0.0.1" : options.tcp.host.c_str(), port);
  std::printf("tulipa-chat: browsers on %s://%s:%u/\n", web.encrypted() ? "https" : "http",
              options.http.host.empty() ? "127.0.0.1" : options.http.host.c_str(), http_port);
  std::fflush(stdout);

  tulipa::Event stop;
  loop.add_signal_handler(SIGTERM, [&] { stop.set(); });
  loop.add_signal_handler(SIGINT, [&] { stop.set(); });
  co_await stop.wait();
  loop.remove_signal_handler(SIGTERM);
  loop.remove_signal_handler(SIGINT);

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

int main(int argc, char** argv) {
  chat::Parsed parsed = chat::parse_options(argc, argv);
  if (!parsed.options) return parsed.exit_code;
  return tulipa::run(serve(std::move(*parsed.options)));
}
