// The TLS component from outside the tree: tulipa::tls (find_package(tulipa COMPONENTS tls)) or `pkg-config
// tulipa-tls`. A TLS streams echo on loopback with the certificate run_consumer.sh made: argv[1] cert, argv[2] key.
#include <chrono>
#include <cstdio>
#include <string>

#include "tulipa/tls_streams.hpp"
#include "tulipa/tulipa.hpp"

using namespace std::chrono_literals;

namespace {

tulipa::Coro<void> echo(tulipa::StreamReader reader, tulipa::StreamWriter writer) {
  tulipa::Bytes line = co_await reader.readline();
  writer.write(line);
  co_await writer.drain();
  writer.close();
}

tulipa::Coro<int> amain(std::string cert, std::string key) {
  tulipa::EventLoop& loop = tulipa::get_running_loop();
  tulipa::SslContext server_ctx = tulipa::SslContext::server(cert, key);
  tulipa::SslContext client_ctx = tulipa::SslContext::client();
  client_ctx.load_verify_locations(cert);
  tulipa::Server server = tulipa::start_server(loop, echo, "127.0.0.1", 0, server_ctx);
  tulipa::SslOptions options;
  options.server_hostname = "localhost";
  auto [reader, writer] =
      co_await tulipa::open_connection(loop, "127.0.0.1", server.sockets().at(0).port(), client_ctx, {}, options);
  writer.write("over tls\n");
  tulipa::Bytes reply =
      co_await tulipa::timeout(5s, [&]() -> tulipa::Coro<tulipa::Bytes> { co_return co_await reader.readline(); });
  writer.close();
  server.close();
  co_return reply == "over tls\n" ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fputs("usage: tulipa_tls_consumer CERT KEY\n", stderr);
    return 2;
  }
  if (tulipa::run(amain(argv[1], argv[2])) != 0) {
    std::fputs("tulipa tls consumer: the TLS echo did not echo\n", stderr);
    return 1;
  }
  std::puts("tulipa tls consumer: ok");
  return 0;
}
