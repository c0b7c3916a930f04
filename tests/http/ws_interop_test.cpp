// Interop both ways with real peers on loopback: Python websockets (Debian python3-websockets) and Node ws
// (Debian node-ws), with and without permessage-deflate. Their scripts are in tests/http/interop/.
#include <gtest/gtest.h>

#include <string>

#include "tulipa/http/websocket.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/process.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"
#include "ws_raw_client.hpp"

namespace tulipa::test {
namespace {

const std::string kDir = TULIPA_WS_INTEROP_DIR;

struct Echo : websocket::Handler {
  void on_message(websocket::Connection& ws, websocket::Message&& m) override { ws.send(m.data, m.text); }
};

struct Peer {
  std::string name;
  std::vector<std::string> client;  // + URL, mode
  std::vector<std::string> server;  // + mode
};
const Peer kPython{
    "python-websockets", {"/usr/bin/python3", kDir + "/ws_client.py"}, {"/usr/bin/python3", kDir + "/ws_server.py"}};
const Peer kNode{"node-ws", {"node", kDir + "/ws_client.js"}, {"node", kDir + "/ws_server.js"}};

class WsInterop : public ::testing::TestWithParam<std::tuple<Peer, bool>> {
 protected:
  EventLoop loop;
};

// Their client, our server.
TEST_P(WsInterop, TheirClientOurServer) {
  auto [peer, deflate] = GetParam();
  websocket::Options options;
  options.deflate.enabled = true;  // the client decides whether to offer it
  options.max_message_size = 16 << 20;
  Server server = websocket::serve(
      loop, [](const websocket::UpgradeRequest&) { return std::make_unique<Echo>(); }, "127.0.0.1", 0, options);
  std::string url = "ws://127.0.0.1:" + std::to_string(server.sockets().at(0).port()) + "/";
  auto argv = peer.client;
  argv.push_back(url);
  argv.push_back(deflate ? "deflate" : "plain");
  auto out = run_until_complete(loop, [](std::vector<std::string> argv) -> Coro<std::string> {
    SubprocessOptions so;
    so.std_out = Stdio::pipe();
    Process p = co_await create_subprocess_exec(argv, std::move(so));
    CommunicateResult r = co_await p.communicate();
    co_return r.std_out.str() + " exit " + std::to_string(*p.returncode());
  }(argv));
  EXPECT_EQ(out, "ok\n exit 0") << peer.name;
  server.close();
  server.abort_clients();
  settle(loop);
}

// Our client (the coroutine API), their server.
TEST_P(WsInterop, OurClientTheirServer) {
  auto [peer, deflate] = GetParam();
  auto argv = peer.server;
  argv.push_back(deflate ? "deflate" : "plain");
  run_until_complete(loop, [](std::vector<std::string> argv, bool deflate, std::string name) -> Coro<void> {
    SubprocessOptions so;
    so.std_out = Stdio::pipe();
    Process p = co_await create_subprocess_exec(argv, std::move(so));
    std::string line = (co_await p.std_out()->readline()).str();
    EXPECT_EQ(line.substr(0, 5), "PORT ") << name;
    websocket::ConnectOptions co;
    co.options.deflate.enabled = true;
    co.options.max_message_size = 16 << 20;
    websocket::WebSocket ws =
        co_await websocket::connect("ws://127.0.0.1:" + line.substr(5, line.size() - 6) + "/", co);
    EXPECT_EQ(!ws.connection()->extensions().empty(), deflate) << name;
    std::string big;
    for (int i = 0; i < 50000; ++i) big += "abc";
    std::string bin(70000, '\x07');
    for (auto [payload, text] : {std::pair<std::string, bool>{"hello", true},
                                 {"h\xc3\xa9llo \xe2\x98\x83", true},
                                 {big, true},
                                 {bin, false},
                                 {"", false}}) {
      co_await ws.send(std::as_bytes(std::span(payload.data(), payload.size())), text);
      websocket::Message m = co_await ws.receive();
      EXPECT_EQ(m.text, text) << name;
      EXPECT_TRUE(m.view() == payload) << name << " " << payload.size();
    }
    co_await ws.close(1000, "done");
    EXPECT_EQ(ws.close_code(), 1000) << name;
    p.kill();
    co_await p.wait();
  }(argv, deflate, peer.name));
  settle(loop);
}

INSTANTIATE_TEST_SUITE_P(Peers, WsInterop, ::testing::Combine(::testing::Values(kPython, kNode), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name == "node-ws" ? "Node" : "Python") +
                                  (std::get<1>(info.param) ? "Deflate" : "Plain");
                         });

}  // namespace
}  // namespace tulipa::test
