// ServerFixture: the base of the tests that start servers and connect to them by name or cancel connections
// (net_resolve_threads_test, streams_resolve_threads_test, tls_resolve_threads_test, tls_cancel_test).
// It owns a loop, the servers a test keeps and the protocol logs it makes, and records every message that reaches
// the loop's exception handler in `reported`. Teardown closes the servers, aborts their clients, lets the loop
// settle and runs the loop's shutdown hooks (answers of the DNS pool come back through the loop's gate, closed
// there). Members are declared so that the logs outlive the loop and the servers.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "support/net_util.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/server.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/task.hpp"

namespace tulipa::test {

class ServerFixture : public ::testing::Test {
 protected:
  ServerFixture() {
    loop.set_exception_handler([this](EventLoop&, const ErrorContext& c) { reported.push_back(c.message); });
  }
  ~ServerFixture() override {
    for (auto& s : servers) {
      s.close();
      s.abort_clients();
    }
    settle(loop);
    run_shutdown_hooks(loop);
  }

  Log& log() { return logs.emplace_back(); }
  Server& keep(Server s) { return servers.emplace_back(std::move(s)); }
  // Counts its calls in factory_calls: a cancelled connection must never make a protocol.
  ProtocolFactory counting(Log& l) {
    return [this, &l]() -> std::unique_ptr<StreamProtocol> {
      ++factory_calls;
      return std::make_unique<Recorder>(l);
    };
  }
  // A streams handler that echoes lines until EOF, counting the connections it served in clients.
  ClientConnected echo_lines() {
    return [this](StreamReader reader, StreamWriter writer) -> Coro<void> {
      ++clients;
      for (;;) {
        Bytes line = co_await reader.readline();
        if (line.empty()) break;
        writer.write(line);
        co_await writer.drain();
      }
      writer.close();
    };
  }

  std::deque<Log> logs;
  EventLoop loop;
  std::deque<Server> servers;
  std::vector<std::string> reported;
  int factory_calls = 0;
  int clients = 0;
};

// Whether `a` is a loopback address (127.0.0.0/8 or ::1).
inline bool is_loopback(const SocketAddress& a) {
  return a.family() == SocketAddress::Family::ipv6 ? a.host() == "::1" : a.host().rfind("127.", 0) == 0;
}

}  // namespace tulipa::test
