// The WebSocket connection's receiving path, frame parser, UTF-8 checks and inflater: arbitrary bytes arrive on an
// upgraded server connection (permessage-deflate agreed) over a socket pair, in chunks whose sizes come from the
// input, with small limits. Invariants: nothing escapes but the documented behaviour (a close frame and the end of
// the connection); every message delivered is within the size limit, and every text message is valid UTF-8.
//
// Input: [flags: bit 0 fragments mode, bit 1 deflate agreed, bits 2-7 chunk size seed] then the bytes.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "tulipa/http/websocket.hpp"
#include "tulipa/http/websocket_utf8.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

namespace {

using namespace tulipa;

constexpr std::size_t kLimit = 64 * 1024;

struct Checker : websocket::Handler {
  void on_message(websocket::Connection& ws, websocket::Message&& m) override {
    FUZZ_CHECK(m.data.size() <= kLimit);
    if (m.text && m.fin && !fragments) FUZZ_CHECK(websocket::is_valid_utf8(m.view()));
    ws.send(m.data, m.text);  // the sending side (and its compressor) runs too
  }
  bool fragments = false;
};

struct Idle : Protocol {};

void run_passes(EventLoop& loop, int n) {
  for (int i = 0; i < n; ++i) {
    loop.call_soon([&loop] { loop.stop(); });
    loop.run_forever();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static EventLoop* loop = new EventLoop();
  if (size == 0) return 0;
  bool fragments = data[0] & 1, deflate = data[0] & 2;
  std::size_t step = 1 + (data[0] >> 2) * 7;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return 0;
  Transport& t = connect_accepted_socket(*loop, std::make_unique<Idle>(), fds[0]);
  std::vector<std::pair<std::string_view, std::string_view>> headers = {{"Upgrade", "websocket"},
                                                                        {"Connection", "Upgrade"}};
  websocket::UpgradeRequest req;
  req.target = "/";
  req.host = "fuzz";
  req.key = "dGhlIHNhbXBsZSBub25jZQ==";
  req.version = "13";
  req.extensions = deflate ? "permessage-deflate; client_max_window_bits" : "";
  req.headers = headers;
  websocket::Options options;
  options.max_message_size = kLimit;
  options.fragments = fragments;
  options.ping_interval = Duration::zero();
  std::unique_ptr<StreamProtocol> old;
  const std::byte* p = reinterpret_cast<const std::byte*>(data + 1);
  std::size_t n = size - 1;
  std::size_t first = n < step ? n : step;
  old = websocket::upgrade(
      t, req, std::span(p, first),
      [fragments](const websocket::UpgradeRequest&) {
        auto c = std::make_unique<Checker>();
        c->fragments = fragments;
        return c;
      },
      options);
  FUZZ_CHECK(old != nullptr);
  // The rest arrives through the socket, in chunks.
  for (std::size_t at = first; at < n; at += step) {
    std::size_t k = at + step > n ? n - at : step;
    // MSG_NOSIGNAL: the server side may have closed already (a protocol error); EPIPE ends the input, SIGPIPE
    // would end the fuzzer.
    if (::send(fds[1], p + at, k, MSG_NOSIGNAL) < 0) break;
    run_passes(*loop, 1);
    char sink[65536];
    while (::read(fds[1], sink, sizeof sink) > 0) {
    }
  }
  ::close(fds[1]);
  run_passes(*loop, 4);
  return 0;
}
