// The tokenizer (parser.hpp) and the framing layer (framing.hpp), sans-I/O. Every case runs with the SSE4.2 scanner
// and with the scalar one.
#include "tulipa/http/parser.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tulipa/http/framing.hpp"

namespace tulipa::http {
namespace {

class Scanners : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { force_scalar(GetParam()); }
  void TearDown() override { force_scalar(false); }
};

struct Parsed {
  ParseResult r;
  RequestHead head;
  std::vector<Header> headers;
};

Parsed parse(std::string_view s, HeadLimits limits = {}, std::size_t max_headers = 100) {
  Parsed p;
  p.headers.resize(max_headers);
  p.r = parse_request(s, p.head, p.headers, limits);
  p.headers.resize(p.r.complete() ? p.head.header_count : 0);
  return p;
}

ParseError error_of(std::string_view s) {
  const Parsed p = parse(s);
  EXPECT_TRUE(p.r.failed()) << s;
  return p.r.error;
}

TEST_P(Scanners, ParsesARequestHead) {
  const std::string req =
      "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test/1.0 (with spaces)\t \r\n"
      "Accept:*/*\r\nX-Empty:\r\n\r\nBODY";
  const Parsed p = parse(req);
  ASSERT_TRUE(p.r.complete());
  EXPECT_EQ(p.r.consumed, req.size() - 4);
  EXPECT_EQ(p.head.method, "GET");
  EXPECT_EQ(p.head.target, "/index.html?x=1");
  EXPECT_EQ(p.head.minor_version, 1);
  ASSERT_EQ(p.headers.size(), 4u);
  EXPECT_EQ(p.headers[0].name, "Host");
  EXPECT_EQ(p.headers[0].value, "example.com");
  EXPECT_EQ(p.headers[1].value, "test/1.0 (with spaces)");
  EXPECT_EQ(p.headers[2].value, "*/*");
  EXPECT_EQ(p.headers[3].value, "");
}

TEST_P(Scanners, EveryPrefixIsIncompleteAndTheWholeIsComplete) {
  const std::string req =
      "POST /api/v1/rooms/general/messages HTTP/1.1\r\nHost: localhost:8080\r\nContent-Type: application/json\r\n"
      "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\nContent-Length: 2\r\n\r\n";
  for (std::size_t n = 0; n < req.size(); ++n) {
    const Parsed p = parse(std::string_view(req).substr(0, n));
    EXPECT_TRUE(p.r.incomplete()) << n;
  }
  EXPECT_TRUE(parse(req).r.complete());
}

TEST_P(Scanners, SkipsLeadingEmptyLines) {
  const Parsed p = parse("\r\n\r\nGET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(p.r.complete());
  EXPECT_EQ(p.head.minor_version, 0);
}

TEST_P(Scanners, RejectsMalformedRequestLines) {
  EXPECT_EQ(error_of("G(T / HTTP/1.1\r\n\r\n"), ParseError::bad_method);
  EXPECT_EQ(error_of("GET\t/ HTTP/1.1\r\n\r\n"), ParseError::bad_method);
  EXPECT_EQ(error_of("GET  / HTTP/1.1\r\n\r\n"), ParseError::bad_request_line);
  EXPECT_EQ(error_of(" GET / HTTP/1.1\r\n\r\n"), ParseError::bad_request_line);
  EXPECT_EQ(error_of("GET /a\x7f HTTP/1.1\r\n\r\n"), ParseError::bad_target);
  EXPECT_EQ(error_of("GET /\xc3\xa9 HTTP/1.1\r\n\r\n"), ParseError::bad_target);
  EXPECT_EQ(error_of("GET /a\rb HTTP/1.1\r\n\r\n"), ParseError::bad_target);
  EXPECT_EQ(error_of("GET / HTTX/1.1\r\n\r\n"), ParseError::bad_version);
  EXPECT_EQ(error_of("GET / HTTP/2.0\r\n\r\n"), ParseError::unsupported_version);
  EXPECT_EQ(error_of("GET / HTTP/1.1\n\r\n"), ParseError::bad_line_ending);
  EXPECT_EQ(error_of("GET / HTTP/1.1\rX\r\n"), ParseError::bad_line_ending);
  EXPECT_EQ(error_of("GET / HTTP/1.1 \r\n\r\n"), ParseError::bad_request_line);
  EXPECT_EQ(error_of("\nGET / HTTP/1.1\r\n\r\n"), ParseError::bad_line_ending);
  EXPECT_EQ(error_of("GET / HTX"), ParseError::bad_version);  // fails before the line is complete
}

TEST_P(Scanners, RejectsSmugglingVectorsInFields) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n"), ParseError::bad_header_name);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n"), ParseError::bad_header_name);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\n: x\r\n\r\n"), ParseError::bad_header_name);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX(y): x\r\n\r\n"), ParseError::bad_header_name);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), ParseError::obs_fold);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n"), ParseError::obs_fold);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), ParseError::bad_line_ending);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n"), ParseError::bad_line_ending);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX: a\r\n\n"), ParseError::bad_line_ending);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX: a\x01 b\r\n\r\n"), ParseError::bad_header_value);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"), ParseError::bad_header_value);
  // A bare CR far into a long value (found by the 16-byte scan, not the tail loop).
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX: " + std::string(40, 'a') + "\r" + std::string(40, 'b') + "\r\n\r\n"),
            ParseError::bad_line_ending);
  // obs-text is allowed in values
  EXPECT_TRUE(parse("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n").r.complete());
}

TEST_P(Scanners, LimitsHaveTheirOwnErrors) {
  HeadLimits limits;
  limits.max_request_line = 64;
  limits.max_head = 256;
  const std::string long_target = "GET /" + std::string(100, 'a');
  EXPECT_EQ(parse(long_target, limits).r.error, ParseError::request_line_too_long);  // before the line ends
  EXPECT_EQ(parse(long_target + " HTTP/1.1\r\n\r\n", limits).r.error, ParseError::request_line_too_long);
  const std::string big = "GET / HTTP/1.1\r\nCookie: " + std::string(300, 'c');
  EXPECT_EQ(parse(big, limits).r.error, ParseError::head_too_large);
  EXPECT_EQ(parse(big + "\r\n\r\n", limits).r.error, ParseError::head_too_large);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 5; ++i) many += "X: y\r\n";
  EXPECT_EQ(parse(many + "\r\n", {}, 4).r.error, ParseError::too_many_headers);
  EXPECT_TRUE(parse(many + "\r\n", {}, 5).r.complete());
  EXPECT_EQ(status_for(ParseError::request_line_too_long), 414);
  EXPECT_EQ(status_for(ParseError::head_too_large), 431);
  EXPECT_EQ(status_for(ParseError::too_many_headers), 431);
  EXPECT_EQ(status_for(ParseError::obs_fold), 400);
}

TEST_P(Scanners, ParsesResponses) {
  ResponseHead head;
  Header headers[8];
  const std::string resp = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  ParseResult r = parse_response(resp, head, headers);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(head.status, 404);
  EXPECT_EQ(head.reason, "Not Found");
  EXPECT_EQ(head.header_count, 1u);
  r = parse_response("HTTP/1.0 200\r\n\r\n", head, headers);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(parse_response("HTTP/1.1 20", head, headers).incomplete());
  EXPECT_TRUE(parse_response("HTTX/1.1 200 OK\r\n\r\n", head, headers).failed());
  EXPECT_TRUE(parse_response("HTTP/1.1 2000 OK\r\n\r\n", head, headers).failed());
}

INSTANTIATE_TEST_SUITE_P(Http, Scanners, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "scalar" : "detected"; });

// Random bytes from a small alphabet rich in delimiters: both scanners must agree on every input.
TEST(HttpParser, SimdAndScalarAgree) {
  std::mt19937 rng(12345);
  const std::string alphabet = "GET /aZ:\r\n \t\x01\x7f\x80\xff-HTTP/1.1Host";
  std::vector<Header> h1(16), h2(16);
  for (int i = 0; i < 20000; ++i) {
    std::string s = "GET /";
    const int len = static_cast<int>(rng() % 120);
    for (int j = 0; j < len; ++j) s.push_back(alphabet[rng() % alphabet.size()]);
    if (rng() % 2) s = "GET /" + std::string(rng() % 40, 'x') + " HTTP/1.1\r\nX: " + s;
    RequestHead a, b;
    force_scalar(false);
    const ParseResult ra = parse_request(s, a, h1);
    force_scalar(true);
    const ParseResult rb = parse_request(s, b, h2);
    force_scalar(false);
    ASSERT_EQ(static_cast<int>(ra.kind), static_cast<int>(rb.kind)) << s;
    ASSERT_EQ(ra.error, rb.error) << s;
    ASSERT_EQ(ra.consumed, rb.consumed) << s;
  }
}

// --- framing

Framing framing_of(std::string_view s, std::uint64_t max_body = 1 << 20) {
  const Parsed p = parse(s);
  EXPECT_TRUE(p.r.complete()) << s;
  return request_framing(p.head, p.headers, max_body);
}

TEST(HttpFraming, ReadsLengthsAndChunked) {
  Framing f = framing_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n");
  EXPECT_EQ(f.error, FramingError::none);
  EXPECT_EQ(f.body, BodyKind::length);
  EXPECT_EQ(f.length, 12u);
  f = framing_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(f.error, FramingError::none);
  f = framing_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n");
  EXPECT_EQ(f.error, FramingError::none);
  EXPECT_EQ(f.length, 5u);
  f = framing_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
  EXPECT_EQ(f.body, BodyKind::chunked);
  f = framing_of("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(f.keep_alive);
  f = framing_of("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(f.error, FramingError::none);
  EXPECT_FALSE(f.keep_alive);
  f = framing_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  EXPECT_TRUE(f.keep_alive);
  f = framing_of("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_TRUE(f.upgrade);
  f = framing_of("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
  EXPECT_TRUE(f.expect_continue);
}

TEST(HttpFraming, RejectsAmbiguousFraming) {
  const auto err = [](std::string_view s) { return framing_of(s).error; };
  EXPECT_EQ(err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            FramingError::length_and_chunked);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            FramingError::conflicting_lengths);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\n"), FramingError::conflicting_lengths);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n"), FramingError::bad_length);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n"), FramingError::bad_length);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            FramingError::bad_length);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            FramingError::not_chunked_last);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n"), FramingError::not_chunked_last);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            FramingError::not_chunked_last);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            FramingError::unsupported_coding);
  EXPECT_EQ(err("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), FramingError::chunked_in_http10);
  EXPECT_EQ(err("GET / HTTP/1.1\r\n\r\n"), FramingError::missing_host);
  EXPECT_EQ(err("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), FramingError::duplicate_host);
  EXPECT_EQ(framing_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", 10).error,
            FramingError::body_too_large);
  EXPECT_EQ(status_for(FramingError::body_too_large), 413);
  EXPECT_EQ(status_for(FramingError::unsupported_coding), 501);
  EXPECT_EQ(status_for(FramingError::length_and_chunked), 400);
}

// Decodes `body` fed in pieces of `step` bytes; returns the data, or "ERROR".
std::string decode(std::string_view body, std::size_t step) {
  ChunkedDecoder d;
  std::string out, pending;
  for (std::size_t i = 0; i < body.size(); i += step) {
    pending.append(body.substr(i, step));
    std::string_view in = pending;
    for (;;) {
      const auto s = d.next(in);
      in.remove_prefix(s.consumed);
      if (s.kind == ChunkedDecoder::Step::Kind::error) return "ERROR";
      if (s.kind == ChunkedDecoder::Step::Kind::done) return in.empty() && i + step >= body.size() ? out : "EXTRA";
      if (s.kind == ChunkedDecoder::Step::Kind::more) break;
      out.append(s.data);
    }
    pending.assign(in);
  }
  return "INCOMPLETE";
}

TEST(HttpChunked, DecodesAtEverySplit) {
  const std::string body = "5\r\nhello\r\n1;ext=\"v\"\r\n \r\nA \r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n";
  for (std::size_t step = 1; step <= body.size(); ++step) EXPECT_EQ(decode(body, step), "hello 0123456789") << step;
}

TEST(HttpChunked, RejectsMalformedChunks) {
  EXPECT_EQ(decode("12345678901234567\r\n", 100), "ERROR");     // overflow: 17 hex digits
  EXPECT_EQ(decode("5\r\nhelloX\r\n0\r\n\r\n", 100), "ERROR");  // data not followed by CRLF
  EXPECT_EQ(decode("5\nhello\r\n0\r\n\r\n", 100), "ERROR");     // bare LF after the size
  EXPECT_EQ(decode("5\r\nhello\n0\r\n\r\n", 100), "ERROR");     // bare LF after the data
  EXPECT_EQ(decode("5\r\nhello\r\n0\r\n\n", 100), "ERROR");     // bare LF after the last chunk
  EXPECT_EQ(decode("5\r\nhello\r\n0\r\nX", 100), "INCOMPLETE");
  EXPECT_EQ(decode("5\r\nhello\r\n0\r\nXY\r\n", 100), "ERROR");  // a trailer line without a colon... ends badly
  EXPECT_EQ(decode("5\r\nhello\r\n0\r\n\r\r", 100), "ERROR");    // last chunk not followed by CRLF
  EXPECT_EQ(decode("\r\n", 100), "ERROR");                       // no size
  EXPECT_EQ(decode("g\r\n", 100), "ERROR");
  EXPECT_EQ(decode("5\r\nhello\r\n0\r\n folded: x\r\n\r\n", 100), "ERROR");
}

}  // namespace
}  // namespace tulipa::http
