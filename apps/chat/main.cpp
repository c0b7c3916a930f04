// tulipa-chat: the chat server. `tulipa-chat --help` lists the options; README.md says how to talk to it.
//
// SIGTERM or SIGINT: stop accepting, tell every client, let the store write what it accepted, exit 0.
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>

#include "core/hub.hpp"
#include "core/text.hpp"
#include "options.hpp"
#include "store/sqlite_store.hpp"
#include "tcp/line_server.hpp"
#include "tulipa/cancel.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/timeout.hpp"
#include "tulipa/tls.hpp"

namespace {

std::unique_ptr<chat::Store> open_store(tulipa::EventLoop& loop, const std::string& spec) {
  if (spec == "memory:") return std::make_unique<chat::MemoryStore>(loop);
  return std::make_unique<chat::SqliteStore>(loop, spec.substr(std::string_view("sqlite:").size()));
}

tulipa::Coro<int> serve(chat::Options options) {
  tulipa::EventLoop& loop = tulipa::get_running_loop();
  std::unique_ptr<chat::Store> store;
  std::optional<tulipa::SslContext> tls;
  try {
    store = open_store(loop, options.store);
    if (!options.tls_cert.empty()) tls = tulipa::SslContext::server(options.tls_cert, options.tls_key);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa-chat: %s\n", e.what());
    co_return 1;
  }
  chat::Hub hub(loop, *store, options.limits);
  hub.load_history();

  tulipa::Server tcp;
  try {
    tcp = chat::start_line_server(loop, hub, options.tcp.host, options.tcp.port, tls ? &*tls : nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa-chat: cannot listen on %s:%u: %s\n", options.tcp.host.c_str(), options.tcp.port,
                 e.what());
    co_return 1;
  }
  std::uint16_t port = tcp.sockets().at(0).port();
  std::printf("tulipa-chat: history in %s\n", store->describe().c_str());
  std::printf("tulipa-chat: line clients on %s:%u%s: %s %s %u\n", options.tcp.host.c_str(), port,
              tls ? " (TLS)" : "", tls ? "openssl s_client -quiet -connect" : "nc",
              options.tcp.host.empty() ? "127.0.0.1" : options.tcp.host.c_str(), port);
  std::fflush(stdout);

  tulipa::Event stop;
  loop.add_signal_handler(SIGTERM, [&] { stop.set(); });
  loop.add_signal_handler(SIGINT, [&] { stop.set(); });
  co_await stop.wait();
  loop.remove_signal_handler(SIGTERM);
  loop.remove_signal_handler(SIGINT);

  // Stop accepting, tell the clients, write what the store accepted, then wait (bounded) for the clients to go.
  tcp.close();
  hub.shutdown("the server is shutting down");
  tulipa::Event flushed;
  store->flush([&] { flushed.set(); });
  co_await flushed.wait();
  try {
    co_await tulipa::wait_for(tcp.wait_closed(), options.limits.close_grace * 2);
  } catch (const tulipa::TimeoutError&) {
    tcp.abort_clients();
  }
  hub.log_to_stderr("stopped");
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  chat::Parsed parsed = chat::parse_options(argc, argv);
  if (!parsed.options) return parsed.exit_code;
  return tulipa::run(serve(std::move(*parsed.options)));
}
