// The HTTP component from outside the tree: tulipa::http (find_package(tulipa COMPONENTS http)) or `pkg-config
// tulipa-http`. A server on loopback and the client asking it once.
#include <cstdio>
#include <string>

#include "tulipa/http/client.hpp"
#include "tulipa/http/server.hpp"
#include "tulipa/tulipa.hpp"

namespace {

tulipa::Coro<int> amain() {
  tulipa::EventLoop& loop = tulipa::get_running_loop();
  tulipa::http::Router router;
  router.get("/hello/{name}", [](tulipa::http::Request& r) {
    return tulipa::http::Response(200, "hello " + std::string(r.param("name")));
  });
  tulipa::http::Server server = tulipa::http::serve(loop, std::move(router), "127.0.0.1", 0);
  tulipa::http::Client client(loop);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.sockets().at(0).port()) + "/hello/consumer";
  tulipa::http::ClientResponse r = co_await client.get(url);
  client.close_idle();
  co_await server.shutdown();
  std::printf("http consumer: %d %s\n", r.status, r.body.c_str());
  co_return r.body == "hello consumer" ? 0 : 1;
}

}  // namespace

int main() { return tulipa::run(amain()); }
