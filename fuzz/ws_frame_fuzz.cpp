// The WebSocket connection's receiving path, frame parser, UTF-8 checks and inflater: arbitrary bytes arrive on an
// upgraded server connection (permessage-deflate agreed) over a socket pair, in chunks whose sizes come from the
// input (handed to the connection as its transport's reads would be), with small limits. Invariants: nothing escapes
// but the documented behaviour (a close frame and the end of the connection); every message delivered is within the
// size limit, and every text message is valid UTF-8.
//
// Input: [flags: bit 0 fragments mode, bit 1 deflate agreed, bits 2-7 chunk size seed] then the bytes.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

// Hands `data` to the transport's protocol as the transport's reads would: data_received, or get_buffer and
// buffer_updated (as many times as the buffers take), stopping where a real transport would stop reading.
void deliver(Transport& t, std::span<const std::byte> data) {
  StreamProtocol& p = t.get_protocol();
  if (!p.is_buffered()) return static_cast<Protocol&>(p).data_received(data);
  auto& b = static_cast<BufferedProtocol&>(p);
  while (!data.empty() && !t.is_closing() && t.is_reading()) {
    std::span<std::byte> buf = b.get_buffer(data.size());
    FUZZ_CHECK(!buf.empty());
    const std::size_t k = std::min(buf.size(), data.size());
    std::memcpy(buf.data(), data.data(), k);
    b.buffer_updated(k);
    data = data.subspan(k);
  }
}

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
  // The rest arrives in chunks, handed to the connection's protocol as the transport's reads would hand them (not
  // sent through the kernel with a loop pass per chunk: a 1-byte step made that thousands of system calls and
  // passes per input). The loop does not run while feeding, so the transport (freed only by its connection_lost
  // callback) stays valid; a transport that is closing or paused reads nothing, so feeding stops there as it would.
  // The peer reads what the server sends (its echoes), so that the server's writes go through.
  char sink[65536];
  for (std::size_t at = first; at < n && !t.is_closing() && t.is_reading(); at += step) {
    std::size_t k = at + step > n ? n - at : step;
    deliver(t, std::span(p + at, k));
    while (::recv(fds[1], sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
  }
  // Our end closes: the server sees EOF (or an error) and ends the connection in the passes that follow.
  ::close(fds[1]);
  run_passes(*loop, 4);
  return 0;
}
