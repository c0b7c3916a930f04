// The HTTP tokenizer and framing layer (tulipa::http's parser.hpp and framing.hpp) on arbitrary bytes.
// Invariants: the SIMD and the scalar scanners give the same answer; a complete parse consumed no more than it was
// given and every view it returned lies inside the input; a prefix of a complete head is incomplete or fails the
// same way (the tokenizer is stateless: feeding more must never change an earlier verdict into another error);
// the chunked decoder gives the same body and verdict whether the bytes come whole or split at any point.
// Input: [split byte][bytes...]: the bytes are parsed as a request (and as a response); what follows a complete
// request head is decoded as a chunked body, whole and split at the split byte's position.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "tulipa/http/framing.hpp"
#include "tulipa/http/parser.hpp"

namespace {

using namespace tulipa::http;

bool inside(std::string_view v, std::string_view buf) {
  return v.empty() || (v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size());
}

struct Outcome {
  ParseResult r;
  RequestHead head;
  Header headers[32];
};

void parse_both(std::string_view buf, Outcome& simd, Outcome& scalar) {
  force_scalar(false);
  simd.r = parse_request(buf, simd.head, simd.headers);
  force_scalar(true);
  scalar.r = parse_request(buf, scalar.head, scalar.headers);
  force_scalar(false);
  FUZZ_CHECK(simd.r.kind == scalar.r.kind);
  FUZZ_CHECK(simd.r.error == scalar.r.error);
  FUZZ_CHECK(simd.r.consumed == scalar.r.consumed);
}

// Decodes `in` as a chunked body, in one piece or in two at `split`. Returns the body, or a verdict marker.
std::string decode(std::string_view in, std::size_t split) {
  ChunkedDecoder d(256);
  std::string body;
  std::string pending;
  const std::string_view pieces[2] = {in.substr(0, split), in.substr(split)};
  for (std::string_view piece : pieces) {
    pending.append(piece);
    std::string_view rest = pending;
    for (;;) {
      const auto s = d.next(rest);
      FUZZ_CHECK(s.consumed <= rest.size());
      rest.remove_prefix(s.consumed);
      if (s.kind == ChunkedDecoder::Step::Kind::error) return "\x01error";
      if (s.kind == ChunkedDecoder::Step::Kind::done) return body + "\x01done";
      if (s.kind == ChunkedDecoder::Step::Kind::more) break;
      FUZZ_CHECK(!s.data.empty());
      body.append(s.data);
    }
    pending.assign(rest);
  }
  FUZZ_CHECK(body.size() == d.body_bytes());
  return body + "\x01more";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t split_code = data[0];
  const std::string buf(reinterpret_cast<const char*>(data + 1), size - 1);

  Outcome simd, scalar;
  parse_both(buf, simd, scalar);
  if (simd.r.complete()) {
    FUZZ_CHECK(simd.r.consumed <= buf.size());
    FUZZ_CHECK(inside(simd.head.method, buf) && inside(simd.head.target, buf));
    for (std::size_t i = 0; i < simd.head.header_count; ++i)
      FUZZ_CHECK(inside(simd.headers[i].name, buf) && inside(simd.headers[i].value, buf));
    // Any prefix of a complete head is incomplete (never an error it did not have).
    const std::size_t cut = split_code % (simd.r.consumed + 1);
    if (cut < simd.r.consumed) {
      Outcome a, b;
      parse_both(std::string_view(buf).substr(0, cut), a, b);
      FUZZ_CHECK(a.r.incomplete());
    }
    const Framing f = request_framing(simd.head, std::span(simd.headers, simd.head.header_count), 1 << 20);
    (void)describe(f.error);
    const std::string_view rest = std::string_view(buf).substr(simd.r.consumed);
    const std::string whole = decode(rest, rest.size());
    const std::string split = decode(rest, split_code % (rest.size() + 1));
    FUZZ_CHECK(whole == split);
  } else if (simd.r.failed()) {
    (void)status_for(simd.r.error);
  }

  ResponseHead rhead;
  Header rheaders[32];
  const ParseResult rr = parse_response(buf, rhead, rheaders);
  if (rr.complete()) {
    FUZZ_CHECK(rr.consumed <= buf.size());
    FUZZ_CHECK(rhead.status >= 100 && rhead.status <= 999);
    (void)response_framing(rhead, std::span(rheaders, rhead.header_count), "GET");
  }
  return 0;
}
