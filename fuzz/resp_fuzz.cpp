// libFuzzer target for tulipa::redis's RESP parser (resp.hpp): the input is a stream of server bytes. Each frame
// is found twice, at once and fed in pieces (the first byte of the input chooses the piece size), and the two must
// agree; every frame the scanner accepts is then read as an owned Reply, walked header by header and through the
// typed decoders, none of which may read outside the frame or fail on anything but ReplyTypeError / ServerError.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "tulipa/redis/client.hpp"
#include "tulipa/redis/resp.hpp"

using namespace tulipa::redis;

namespace {

template <class T>
void try_decode(const char* p, std::size_t n) {
  RespReader r(p, n);
  T v{};
  try {
    detail::decode(r, v);
  } catch (const ReplyTypeError&) {
  } catch (const ServerError&) {
  }
}

void check_frame(const char* p, std::size_t n) {
  {
    RespReader r(p, n);
    Reply rep = read_reply(r);
    FUZZ_CHECK(r.at_end());  // a frame is exactly one value
    (void)rep.to_string();
  }
  {
    RespReader r(p, n);
    RespHeader h = r.next();
    r.skip_values(h);
    if (h.marker == '|') {
      RespHeader v = r.next();
      r.skip_values(v);
    }
  }
  try_decode<std::optional<std::string>>(p, n);
  try_decode<long long>(p, n);
  try_decode<std::vector<std::optional<std::string>>>(p, n);
  try_decode<std::vector<StreamEntry>>(p, n);
  try_decode<std::vector<StreamEntries>>(p, n);
  try_decode<std::optional<KeyValue>>(p, n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t piece = 1 + data[0] % 16;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t at = 0;
  RespScanner whole, pieces;
  while (at < bytes.size()) {
    std::size_t n;
    try {
      n = whole.scan(bytes.data() + at, bytes.size() - at);
    } catch (const ProtocolError&) {
      return 0;
    }
    // The same frame, given in growing prefixes: complete at the same length, never before.
    std::size_t got = 0, m = 0;
    try {
      while (m == 0 && got < bytes.size() - at) {
        got = std::min(bytes.size() - at, got + piece);
        m = pieces.scan(bytes.data() + at, got);
      }
    } catch (const ProtocolError&) {
      FUZZ_CHECK(!"the piecewise scan refused what the whole scan accepted");
    }
    FUZZ_CHECK(m == n);
    if (n == 0) return 0;  // incomplete
    check_frame(bytes.data() + at, n);
    at += n;
  }
  return 0;
}
