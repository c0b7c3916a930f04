// libFuzzer target for the chat's line side: the input is what a TCP client sends. The first byte chooses the
// size of the reads the bytes are cut into; the line framer (apps/chat/core/line_framer.hpp) must give lines
// without '\n' and within the limit, and each line goes to a hub (commands, nicks, rooms, messages) with a second
// member watching. Whatever the input, no byte below 0x20 but '\n' ever reaches the other member, and each line
// it gets is a server line ("* ", "! ") or a timestamped message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/hub.hpp"
#include "core/line_framer.hpp"
#include "fuzz/fuzz_check.hpp"
#include "tulipa/loop.hpp"

namespace {

struct Watcher final : chat::Client {
  std::string received;
  chat::WireFormat format() const noexcept override { return chat::WireFormat::line; }
  void write(std::string_view batch) override { received.append(batch); }
  std::size_t write_buffer_size() const noexcept override { return 0; }
  void close() override {}
};

void settle(tulipa::EventLoop& loop) {
  for (int i = 0; i < 100 && loop.ready_count() > 0; ++i) loop.run_once();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t piece = 1 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  // One loop for the process (making one per input cost more than the run itself); every input leaves it idle.
  static tulipa::EventLoop* shared_loop = new tulipa::EventLoop;
  tulipa::EventLoop& loop = *shared_loop;
  chat::MemoryStore store(loop);
  chat::Limits limits;
  limits.idle = std::chrono::seconds(0);
  limits.max_line = 256;
  chat::Hub hub(loop, store, limits, nullptr);
  Watcher sender, other;
  chat::Session& s = hub.connect(sender, "10.0.0.1");
  chat::Session& o = hub.connect(other, "10.0.0.2");

  chat::LineFramer framer(limits.max_line);
  auto drain = [&] {
    for (;;) {
      chat::LineFramer::Next n = framer.next();
      if (n.kind == chat::LineFramer::Next::Kind::none) return;
      if (n.kind == chat::LineFramer::Next::Kind::too_long) {
        hub.line_too_long(s);
        continue;
      }
      FUZZ_CHECK(n.text.size() <= limits.max_line);
      FUZZ_CHECK(n.text.find('\n') == std::string_view::npos);
      hub.receive(s, n.text);
    }
  };
  for (std::size_t at = 0; at < input.size(); at += piece) {
    framer.feed(input.substr(at, piece));
    drain();
    settle(loop);
  }
  framer.finish();
  drain();
  settle(loop);

  for (char c : other.received) FUZZ_CHECK(c == '\n' || static_cast<unsigned char>(c) >= 0x20);
  std::string_view rest = other.received;
  while (!rest.empty()) {
    std::size_t nl = rest.find('\n');
    FUZZ_CHECK(nl != std::string_view::npos);
    std::string_view line = rest.substr(0, nl);
    bool server = line.starts_with("* ") || line.starts_with("! ");
    bool message =
        line.size() > 10 && line[2] == ':' && line[5] == ':' && line[8] == ' ' && (line[9] == '#' || line[9] == '[');
    FUZZ_CHECK(server || message);
    rest.remove_prefix(nl + 1);
  }
  if (!s.closing()) hub.disconnect(s);
  hub.disconnect(o);
  settle(loop);
  FUZZ_CHECK(loop.ready_count() == 0);
  return 0;
}
