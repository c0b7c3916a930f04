// StreamReader's framing (readline, readuntil, readexactly, read(n)) over arbitrary chunking, against the
// invariants asyncio's StreamReader keeps: every byte fed comes out once, in order (or is reported as discarded by
// readline's LimitOverrunError); a line ends at the first separator and fits the limit; LimitOverrunError's
// consumed() is where the separator starts, or everything buffered when none was found; EOF turns the rest into
// the last line / IncompleteReadError's partial.
//
// Input: [limit code][separator length code][separator bytes] then records [op][chunk length][chunk bytes]...
// The reader runs the ops in turn (cycling) in a task while the chunks are fed one by one, the loop running
// until idle after each; then EOF is fed and the reader must finish with every byte accounted for.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/task.hpp"

namespace {

using namespace tulipa;

struct Input {
  std::size_t limit = 1;
  std::string sep;
  std::vector<std::uint8_t> ops;
  std::vector<std::string> chunks;
};

Input parse(const std::uint8_t* data, std::size_t size) {
  std::size_t at = 0;
  auto byte = [&]() -> std::uint8_t { return at < size ? data[at++] : 0; };
  Input in;
  in.limit = 1 + byte() % 48;  // small limits, so the overrun paths are hit often
  const std::size_t sep_len = 1 + byte() % 4;
  for (std::size_t i = 0; i < sep_len; ++i) in.sep.push_back(static_cast<char>(byte()));
  while (at < size) {
    in.ops.push_back(byte());
    const std::size_t len = std::min<std::size_t>(byte() % 64, size - at);
    in.chunks.emplace_back(reinterpret_cast<const char*>(data + at), len);
    at += len;
  }
  if (in.ops.empty()) in.ops.push_back(0);
  return in;
}

struct Fed {
  std::string bytes;    // everything fed so far
  std::size_t pos = 0;  // how much of it the reader has returned or discarded
  bool eof = false;
  std::size_t pending() const { return bytes.size() - pos; }
  // `s` is what comes next in the stream; consumes it.
  void take(const std::string& s) {
    FUZZ_CHECK(bytes.compare(pos, s.size(), s) == 0);
    pos += s.size();
  }
};

Coro<void> consume(StreamReader r, const Input& in, Fed& fed) {
  const std::size_t limit = in.limit;
  const std::string& sep = in.sep;
  for (std::size_t i = 0; !r.at_eof(); ++i) {
    const std::uint8_t op = in.ops[i % in.ops.size()];
    const std::size_t n = 1 + (op >> 2);
    switch (op & 3) {
      case 0:
        try {
          const std::string s = (co_await r.readline()).str();
          const std::size_t nl = s.find('\n');
          if (nl == std::string::npos) {
            FUZZ_CHECK(fed.eof && s.size() == fed.pending());  // the last, unterminated line
          } else {
            FUZZ_CHECK(nl == s.size() - 1 && nl <= limit);
          }
          fed.take(s);
        } catch (const LimitOverrunError& e) {
          // readline dropped the line through its '\n', or everything buffered when there was none.
          const std::size_t dropped = fed.pending() - r.buffered();
          const std::string window = fed.bytes.substr(fed.pos, dropped);
          const std::size_t nl = window.find('\n');
          if (nl != std::string::npos) {
            FUZZ_CHECK(nl == dropped - 1 && e.consumed() == nl && nl > limit);
          } else {
            FUZZ_CHECK(r.buffered() == 0 && e.consumed() == dropped && dropped > limit);
          }
          fed.take(window);
        }
        break;
      case 1: {
        std::size_t overrun = 0;  // LimitOverrunError's consumed()
        try {
          const std::string s = (co_await r.readuntil(sep)).str();
          FUZZ_CHECK(s.size() >= sep.size() && s.find(sep) == s.size() - sep.size());
          FUZZ_CHECK(s.size() - sep.size() <= limit);
          fed.take(s);
        } catch (const IncompleteReadError& e) {
          const std::string partial = e.partial().str();
          FUZZ_CHECK(fed.eof && !e.expected() && partial.size() == fed.pending());
          FUZZ_CHECK(partial.find(sep) == std::string::npos);
          fed.take(partial);
        } catch (const LimitOverrunError& e) {
          // Nothing is removed; consumed() is where the separator starts, or all that is buffered.
          FUZZ_CHECK(r.buffered() == fed.pending());
          const std::size_t found = fed.bytes.find(sep, fed.pos);
          if (found != std::string::npos) {
            FUZZ_CHECK(e.consumed() == found - fed.pos && e.consumed() > limit);
          } else {
            FUZZ_CHECK(e.consumed() == fed.pending() && e.consumed() > limit);
          }
          overrun = e.consumed();
        }
        if (overrun > 0) {  // get past it, as a caller would
          const std::string skipped = (co_await r.read(static_cast<std::ptrdiff_t>(overrun))).str();
          FUZZ_CHECK(skipped.size() == overrun);
          fed.take(skipped);
        }
        break;
      }
      case 2:
        try {
          const std::string s = (co_await r.readexactly(n)).str();
          FUZZ_CHECK(s.size() == n);
          fed.take(s);
        } catch (const IncompleteReadError& e) {
          const std::string partial = e.partial().str();
          FUZZ_CHECK(fed.eof && e.expected() == n && partial.size() < n && partial.size() == fed.pending());
          fed.take(partial);
        }
        break;
      case 3: {
        const std::string s = (co_await r.read(static_cast<std::ptrdiff_t>(n))).str();
        FUZZ_CHECK(s.size() <= n);
        FUZZ_CHECK(!s.empty() || (fed.eof && fed.pending() == 0));
        fed.take(s);
        break;
      }
    }
  }
  FUZZ_CHECK(fed.eof && fed.pending() == 0 && r.buffered() == 0);
}

void run_until_idle(EventLoop& loop) {
  while (loop.ready_count() > 0) loop.run_once();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static EventLoop* loop = new EventLoop;  // one loop for the process: making one costs more than a run
  const Input in = parse(data, size);
  StreamReader reader(in.limit);
  Fed fed;
  Task<void> task = create_task(*loop, consume(reader, in, fed));
  run_until_idle(*loop);
  for (const std::string& chunk : in.chunks) {
    fed.bytes += chunk;
    reader.feed_data(chunk);
    run_until_idle(*loop);
  }
  fed.eof = true;
  reader.feed_eof();
  run_until_idle(*loop);
  FUZZ_CHECK(task.done());
  task.result();  // rethrows anything unexpected: a crash
  return 0;
}
