// The router: method + path pattern -> handler, for the HTTP server (server.hpp).
//
//   http::Router router;
//   router.get("/", [](http::Request&) { return http::Response(200, "Hello, World!"); });       // synchronous
//   router.get("/rooms/{name}", [](http::Request& r) -> Coro<http::Response> {                  // coroutine
//     co_return http::Response(200, std::string(r.param("name")));
//   });
//
//   router.post("/upload", [](http::Request& r, http::BodyReader& body) -> Coro<http::Response> {  // streamed body
//     for (std::string_view piece; !(piece = co_await body.read()).empty();) consume(piece);
//     co_return http::Response(204);
//   });
//
// All forms go through the same table. A synchronous handler (returning Response) runs inside the read that
// completed its request: no task, no copy of the request; use it for the hot path and for anything that does not
// wait. A coroutine handler (returning Coro<Response>) runs as a task of its own; the server copies the request
// out of the read buffer for it and keeps the connection's later requests waiting (responses leave in request
// order). A streaming handler (taking a BodyReader as well) starts as soon as the head of its request arrived and
// reads the body piece by piece as it comes (message.hpp); the server does not buffer that body whole. A streaming
// handler that returns before reading its body to the end gets its response sent with "Connection: close".
//
// Patterns: segments separated by '/'; a segment `{name}` matches any one non-empty segment and is read back with
// Request::param("name"); a last segment `{name...}` matches the rest of the path (one or more segments).
// Literal segments win over parameters; routes are otherwise tried in the order they were added.
// Matching: a path that matches no pattern is a 404; one that matches only routes of other methods is a 405 whose
// Allow field lists them (GET implies HEAD; a HEAD request runs the GET handler, and the server drops the body).
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tulipa/coro.hpp"
#include "tulipa/http/message.hpp"

namespace tulipa::http {

using SyncHandler = std::function<Response(Request&)>;
using AsyncHandler = std::function<Coro<Response>(Request&)>;
using StreamHandler = std::function<Coro<Response>(Request&, BodyReader&)>;

class Router {
 public:
  struct Route;
  // What route() found for a request.
  struct Match {
    const Route* route = nullptr;  // null: 404 or 405
    bool method_not_allowed = false;
    std::string allow{};  // for a 405: "GET, HEAD, POST"
  };

  template <class F>
  Router& route(std::string_view method, std::string_view pattern, F&& handler) {
    if constexpr (std::is_invocable_v<F&, Request&, BodyReader&>) {
      static_assert(std::is_same_v<std::invoke_result_t<F&, Request&, BodyReader&>, Coro<Response>>,
                    "a streaming handler returns Coro<Response>");
      add(method, pattern, SyncHandler{}, AsyncHandler{}, StreamHandler(std::forward<F>(handler)));
    } else if constexpr (std::is_same_v<std::invoke_result_t<F&, Request&>, Coro<Response>>) {
      add(method, pattern, SyncHandler{}, AsyncHandler(std::forward<F>(handler)));
    } else {
      using R = std::invoke_result_t<F&, Request&>;
      static_assert(std::is_convertible_v<R, Response>,
                    "a handler returns Response (synchronous) or Coro<Response> (coroutine)");
      add(method, pattern, SyncHandler(std::forward<F>(handler)), AsyncHandler{});
    }
    return *this;
  }
  template <class F>
  Router& get(std::string_view pattern, F&& h) {
    return route("GET", pattern, std::forward<F>(h));
  }
  template <class F>
  Router& post(std::string_view pattern, F&& h) {
    return route("POST", pattern, std::forward<F>(h));
  }
  template <class F>
  Router& put(std::string_view pattern, F&& h) {
    return route("PUT", pattern, std::forward<F>(h));
  }
  template <class F>
  Router& del(std::string_view pattern, F&& h) {
    return route("DELETE", pattern, std::forward<F>(h));
  }

  // Finds the route for `method` and `path` and stores the path's parameters in `request`.
  Match find(std::string_view method, std::string_view path, Request& request) const;

  struct Route {
    std::string method{};
    std::vector<std::string> segments{};  // "{name}" for a parameter, "{name...}" for the rest
    std::uint8_t literal_count = 0;
    SyncHandler sync{};
    AsyncHandler async{};
    StreamHandler stream{};
    bool coroutine() const noexcept { return async || stream; }
  };

 private:
  void add(std::string_view method, std::string_view pattern, SyncHandler sync, AsyncHandler async,
           StreamHandler stream = {});
  bool matches(const Route& r, std::string_view path, Request* request) const;

  std::vector<Route> routes_;
};

}  // namespace tulipa::http
