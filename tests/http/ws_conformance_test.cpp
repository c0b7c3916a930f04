// The Autobahn TestSuite's case groups 1-7, 9, 10, 12-13, reproduced against our server with a raw-frame client
// (tests/http/ws_raw_client.hpp): every frame the suite sends, valid or not, and what it expects back.
#include <gtest/gtest.h>

#include <string>

#include "tulipa/http/websocket.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/task.hpp"
#include "ws_raw_client.hpp"

namespace tulipa::test {
namespace {

using websocket::Opcode;
namespace cc = websocket::close_code;

struct Echo : websocket::Handler {
  void on_message(websocket::Connection& ws, websocket::Message&& m) override { ws.send(m.data, m.text); }
};

class WsConformance : public ::testing::Test {
 protected:
  void SetUp() override { options.ping_interval = Duration::zero(); }
  void start() {
    server = websocket::serve(
        loop, [](const websocket::UpgradeRequest&) { return std::make_unique<Echo>(); }, "127.0.0.1", 0, options);
    port = server.sockets().at(0).port();
  }
  template <class F>
  void run(F scenario) {
    if (!port) start();
    run_until_complete(loop, create_task(loop, [](F f) -> Coro<void> { co_await f(); }(std::move(scenario))));
  }
  Coro<RawWs> client(std::string extra = {}, std::size_t step = 0, std::string then = {}) {
    return RawWs::open(loop, port, std::move(extra), step, std::move(then));
  }

  EventLoop loop;
  websocket::Options options;
  Server server;
  std::uint16_t port = 0;
};

std::string text_of(std::size_t n) {
  std::string s(n, 'x');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

// Expects a close frame with `code`, then the server's TCP close.
Coro<void> expect_close(RawWs& ws, std::uint16_t code) {
  RawFrame f = co_await ws.read();
  while (!f.eof && f.opcode != Opcode::close) f = co_await ws.read();
  EXPECT_FALSE(f.eof) << "no close frame";
  EXPECT_EQ(f.opcode, Opcode::close);
  EXPECT_EQ(f.close_code(), code);
  EXPECT_TRUE(co_await ws.closed());
}

// --- 1: framing

TEST_F(WsConformance, Group1TextAndBinaryOfEveryLengthClass) {
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    EXPECT_NE(ws.response.find("101 Switching Protocols"), std::string::npos);
    EXPECT_NE(ws.response.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos);
    for (std::size_t n : {0, 125, 126, 127, 128, 65535, 65536, 200000}) {
      for (Opcode op : {Opcode::text, Opcode::binary}) {
        std::string payload = text_of(n);
        ws.send(op, payload);
        RawFrame f = co_await ws.read_message();
        EXPECT_EQ(f.opcode, op);
        EXPECT_EQ(f.payload.size(), n);
        EXPECT_TRUE(f.payload == payload);
      }
    }
    // 1.1.8 / 1.2.8: 65536 bytes sent in chunks of 997 bytes (the server reassembles across reads).
    co_await ws.raw_chunked(RawWs::frame(Opcode::binary, text_of(65536)), 997);
    RawFrame f = co_await ws.read_message();
    EXPECT_EQ(f.payload, text_of(65536));
    // A header split byte by byte.
    co_await ws.raw_chunked(RawWs::frame(Opcode::text, text_of(300)), 1);
    f = co_await ws.read_message();
    EXPECT_EQ(f.payload, text_of(300));
    ws.close_frame(cc::normal);
    co_await expect_close(ws, cc::normal);
  });
}

// The upgrade request gathered across reads (8 bytes a piece) with a first frame right behind it; a request head
// above max_handshake_size is answered 431, whether it came in one read or gathered from pieces.
TEST_F(WsConformance, HandshakeHeadSplitAcrossReadsAndOversized) {
  options.max_handshake_size = 512;
  run([&]() -> Coro<void> {
    RawWs ws = co_await client({}, 8, RawWs::frame(Opcode::text, "right behind the head"));
    EXPECT_NE(ws.response.find("101 Switching Protocols"), std::string::npos);
    RawFrame f = co_await ws.read_message();
    EXPECT_EQ(f.payload, "right behind the head");
    ws.close_frame(cc::normal);
    co_await expect_close(ws, cc::normal);
    // 560 bytes: in pieces of 64 the limit is crossed only by the last piece, so the server has read the whole
    // request when it answers and closes (unread input would turn its close into a reset).
    for (std::size_t step : {std::size_t{0}, std::size_t{64}}) {
      RawWs big = co_await client("X-Padding: " + std::string(399, 'p') + "\r\n", step);
      EXPECT_EQ(big.response.rfind("HTTP/1.1 431 ", 0), 0u) << big.response;
    }
  });
}

TEST_F(WsConformance, Group1UnmaskedClientFrameIs1002) {
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    ws.send(Opcode::text, "hi", true, false, false, false, /*mask=*/false);
    co_await expect_close(ws, cc::protocol_error);
  });
}

// --- 2: ping / pong

TEST_F(WsConformance, Group2PingsArePonged) {
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    for (std::string p : {std::string(), std::string("Hello, world!"), text_of(125), std::string("\x00\xff\xfe", 3)}) {
      ws.send(Opcode::ping, p);
      RawFrame f = co_await ws.read();
      EXPECT_EQ(f.opcode, Opcode::pong);
      EXPECT_EQ(f.payload, p);
    }
    // 2.6: ten pings in a row, ten pongs in order; unsolicited pongs (2.7, 2.8) get nothing.
    ws.send(Opcode::pong, "unsolicited");
    for (int i = 0; i < 10; ++i) ws.send(Opcode::ping, std::to_string(i));
    for (int i = 0; i < 10; ++i) {
      RawFrame f = co_await ws.read();
      EXPECT_EQ(f.opcode, Opcode::pong);
      EXPECT_EQ(f.payload, std::to_string(i));
    }
    ws.close_frame(cc::normal);
    co_await expect_close(ws, cc::normal);
  });
}

TEST_F(WsConformance, Group2PingAbove125Is1002) {
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    ws.send(Opcode::ping, text_of(126));
    co_await expect_close(ws, cc::protocol_error);
  });
}

TEST_F(WsConformance, Group2PingInPiecesIsPonged) {
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    co_await ws.raw_chunked(RawWs::frame(Opcode::ping, "Hello, world!"), 1);
    RawFrame f = co_await ws.read();
    EXPECT_EQ(f.opcode, Opcode::pong);
    EXPECT_EQ(f.payload, "Hello, world!");
  });
}

// --- 3: reserved bits (a valid message before the bad frame is still echoed)

TEST_F(WsConformance, Group3ReservedBitsAre1002) {
  struct Case {
    Opcode op;
    bool rsv1, rsv2, rsv3;
  };
  for (Case c : {Case{Opcode::text, false, true, false}, Case{Opcode::text, false, false, true},
                 Case{Opcode::text, false, true, true}, Case{Opcode::binary, true, false, false},
                 Case{Opcode::ping, true, false, false}, Case{Opcode::text, true, true, true},
                 Case{Opcode::close, false, true, false}}) {
    run([&]() -> Coro<void> {
      RawWs ws = co_await client();
      ws.send(Opcode::text, "before");
      ws.send(c.op, "bad", true, c.rsv1, c.rsv2, c.rsv3);
      ws.send(Opcode::ping, "after");
      RawFrame f = co_await ws.read();
      EXPECT_EQ(f.payload, "before");
      co_await expect_close(ws, cc::protocol_error);
    });
  }
}

// --- 4: opcodes

TEST_F(WsConformance, Group4ReservedOpcodesAre1002) {
  for (int op : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
    run([&]() -> Coro<void> {
      RawWs ws = co_await client();
      ws.send(Opcode::text, "before");
      ws.send(static_cast<Opcode>(op), op < 8 ? "data" : "");
      RawFrame f = co_await ws.read();
      EXPECT_EQ(f.payload, "before");
      co_await expect_close(ws, cc::protocol_error);
    });
  }
}

// --- 5: fragmentation

TEST_F(WsConformance, Group5FragmentsWithInterleavedPings) {
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    ws.send(Opcode::text, "frag", false);
    ws.send(Opcode::ping, "p1");
    ws.send(Opcode::continuation, "ment", false);
    ws.send(Opcode::ping, "p2");
    ws.send(Opcode::continuation, "ed", true);
    RawFrame a = co_await ws.read(), b = co_await ws.read(), m = co_await ws.read_message();
    EXPECT_EQ(a.opcode, Opcode::pong);
    EXPECT_EQ(a.payload, "p1");
    EXPECT_EQ(b.payload, "p2");
    EXPECT_EQ(m.opcode, Opcode::text);
    EXPECT_EQ(m.payload, "fragmented");
    // 5.6-5.9: many fragments, some empty, binary.
    for (int i = 0; i < 20; ++i) ws.send(i ? Opcode::continuation : Opcode::binary, i % 3 ? "ab" : "", i == 19);
    m = co_await ws.read_message();
    EXPECT_EQ(m.opcode, Opcode::binary);
    EXPECT_EQ(m.payload.size(), 26u);
    ws.close_frame(cc::normal);
    co_await expect_close(ws, cc::normal);
  });
}

TEST_F(WsConformance, Group5ContinuationRulesAre1002) {
  // 5.1/5.2: fragmented ping and pong; 5.9-5.12: a continuation with nothing to continue; 5.18: a new text inside
  // a fragmented message.
  std::vector<std::vector<std::string>> cases = {
      {RawWs::frame(Opcode::ping, "a", false), RawWs::frame(Opcode::continuation, "b")},
      {RawWs::frame(Opcode::pong, "a", false), RawWs::frame(Opcode::continuation, "b")},
      {RawWs::frame(Opcode::continuation, "orphan", true)},
      {RawWs::frame(Opcode::continuation, "orphan", false), RawWs::frame(Opcode::text, "x")},
      {RawWs::frame(Opcode::text, "a", false), RawWs::frame(Opcode::text, "b")},
      {RawWs::frame(Opcode::text, "a", false), RawWs::frame(Opcode::binary, "b", false)},
  };
  for (auto& frames : cases) {
    run([&]() -> Coro<void> {
      RawWs ws = co_await client();
      for (auto& f : frames) ws.raw(f);
      co_await expect_close(ws, cc::protocol_error);
    });
  }
}

// --- 6: UTF-8

const char* const kValidUtf8[] = {
    "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
    "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
    "\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf \xef\xbf\xbf \xee\x80\x80 \xed\x9f\xbf \xe0\xa0\x80 \xc2\x80 \x7f",
};
const char* const kInvalidUtf8[] = {
    ("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
     "edited"),  // 6.3: a surrogate (one string: the parentheses tell clang's -Wstring-concatenation so)
    "\xc0\xaf",
    "\xe0\x80\xaf",
    "\xf0\x80\x80\xaf",  // 6.8 overlong
    "\xf4\x90\x80\x80",
    "\xf8\x88\x80\x80\x80",
    "\xfe",
    "\xff",  // beyond U+10FFFF, never-valid bytes
    "\xed\xa0\x80",
    "\xed\xbf\xbf",
    "\x80",
    "\xbf",  // surrogates, lone continuations
    "\xc2 ",
    "\xe0\xa0 ",  // 6.6: a code point cut by a space
};

TEST_F(WsConformance, Group6ValidUtf8SplitAtEveryByte) {
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    for (std::string_view text : kValidUtf8) {
      for (std::size_t cut = 0; cut <= text.size(); ++cut) {
        ws.send(Opcode::text, text.substr(0, cut), false);
        ws.send(Opcode::continuation, text.substr(cut), true);
        RawFrame m = co_await ws.read_message();
        EXPECT_EQ(m.payload, text);
      }
      // 6.2.4: one byte per frame.
      for (std::size_t i = 0; i < text.size(); ++i)
        ws.send(i ? Opcode::continuation : Opcode::text, text.substr(i, 1), i + 1 == text.size());
      EXPECT_EQ((co_await ws.read_message()).payload, text);
    }
  });
}

TEST_F(WsConformance, Group6InvalidUtf8Is1007) {
  for (std::string_view bad : kInvalidUtf8) {
    run([&]() -> Coro<void> {
      RawWs ws = co_await client();
      ws.send(Opcode::text, bad);
      co_await expect_close(ws, cc::invalid_data);
    });
  }
}

TEST_F(WsConformance, Group6InvalidUtf8FailsFast) {
  // 6.4: the first fragment holds the invalid byte; the server must close before the message ends (the rest is
  // sent only after the close frame arrived).
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    ws.send(Opcode::text, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90", false);
    RawFrame f = co_await ws.read();
    EXPECT_EQ(f.opcode, Opcode::close);
    EXPECT_EQ(f.close_code(), cc::invalid_data);
    ws.send(Opcode::continuation, "\x80\x80 the rest", true);
    EXPECT_TRUE(co_await ws.closed());
  });
  // 6.4.3/6.4.4: split inside the frame itself (the payload arrives byte by byte).
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    std::string frame = RawWs::frame(Opcode::text, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80xyz");
    co_await ws.raw_chunked(frame.substr(0, frame.size() - 5), 1);  // up to the bad byte (0x90), not the end
    RawFrame f = co_await ws.read();
    EXPECT_EQ(f.close_code(), cc::invalid_data);
  });
}

// --- 7: close

TEST_F(WsConformance, Group7ValidCloseCodesAreEchoed) {
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
    run([&]() -> Coro<void> {
      RawWs ws = co_await client();
      ws.close_frame(code, "reason \xc3\xa4");
      co_await expect_close(ws, code);
    });
  }
  run([&]() -> Coro<void> {  // 7.3.1: an empty close frame gets an empty one back
    RawWs ws = co_await client();
    ws.send(Opcode::close, "");
    RawFrame f = co_await ws.read();
    EXPECT_EQ(f.opcode, Opcode::close);
    EXPECT_EQ(f.payload, "");
    EXPECT_TRUE(co_await ws.closed());
  });
}

TEST_F(WsConformance, Group7InvalidClosePayloadsAre1002Or1007) {
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    run([&]() -> Coro<void> {
      RawWs ws = co_await client();
      ws.close_frame(code);
      co_await expect_close(ws, cc::protocol_error);
    });
  }
  run([&]() -> Coro<void> {  // 7.3.2: a 1-byte payload
    RawWs ws = co_await client();
    ws.send(Opcode::close, "\x03");
    co_await expect_close(ws, cc::protocol_error);
  });
  run([&]() -> Coro<void> {  // 7.5.1: a reason that is not UTF-8
    RawWs ws = co_await client();
    ws.close_frame(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80");
    co_await expect_close(ws, cc::invalid_data);
  });
  run([&]() -> Coro<void> {  // 7.3.6: a close payload above 125 bytes
    RawWs ws = co_await client();
    ws.close_frame(1000, text_of(124));
    co_await expect_close(ws, cc::protocol_error);
  });
}

TEST_F(WsConformance, Group7NothingAfterClose) {
  // 7.1.2-7.1.5: after its close frame, the peer's data and pings get no answer; the server closes TCP.
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    ws.send(Opcode::text, "before");
    ws.close_frame(cc::normal);
    ws.send(Opcode::text, "after");
    ws.send(Opcode::ping, "after");
    RawFrame a = co_await ws.read();
    EXPECT_EQ(a.payload, "before");
    co_await expect_close(ws, cc::normal);
  });
}

TEST_F(WsConformance, Group7ServerInitiatedClose) {
  struct Closer : websocket::Handler {
    void on_message(websocket::Connection& ws, websocket::Message&& m) override {
      ws.close(4001, m.view());
      EXPECT_FALSE(ws.send_text("too late"));
    }
  };
  server = websocket::serve(
      loop, [](const websocket::UpgradeRequest&) { return std::make_unique<Closer>(); }, "127.0.0.1", 0, options);
  port = server.sockets().at(0).port();
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    ws.send(Opcode::text, "bye");
    RawFrame f = co_await ws.read();
    EXPECT_EQ(f.opcode, Opcode::close);
    EXPECT_EQ(f.close_code(), 4001);
    EXPECT_EQ(f.payload.substr(2), "bye");
    ws.close_frame(4001);
    EXPECT_TRUE(co_await ws.closed());
  });
}

TEST_F(WsConformance, Group7CloseTimeoutAbortsASilentPeer) {
  options.close_timeout = std::chrono::milliseconds(20);
  struct Closer : websocket::Handler {
    void on_open(websocket::Connection& ws) override { ws.close(1000, "now"); }
    void on_message(websocket::Connection&, websocket::Message&&) override {}
  };
  server = websocket::serve(
      loop, [](const websocket::UpgradeRequest&) { return std::make_unique<Closer>(); }, "127.0.0.1", 0, options);
  port = server.sockets().at(0).port();
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    RawFrame f = co_await ws.read();
    EXPECT_EQ(f.opcode, Opcode::close);
    EXPECT_TRUE(co_await ws.closed());  // we never answer: the server gives up after close_timeout
  });
}

// --- 9: limits (kept small)

TEST_F(WsConformance, Group9MessageAboveTheLimitIs1009) {
  options.max_message_size = 64 * 1024;
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    ws.send(Opcode::binary, text_of(64 * 1024));
    EXPECT_EQ((co_await ws.read_message()).payload.size(), 64u * 1024);
    ws.send(Opcode::binary, text_of(64 * 1024 + 1));
    co_await expect_close(ws, cc::message_too_big);
  });
  run([&]() -> Coro<void> {  // fragmented past the limit: refused at the frame that crosses it
    RawWs ws = co_await client();
    for (int i = 0; i < 3; ++i) ws.send(i ? Opcode::continuation : Opcode::text, text_of(30000), false);
    co_await expect_close(ws, cc::message_too_big);
  });
  run([&]() -> Coro<void> {  // many large messages back to back (9.1/9.2 in small)
    RawWs ws = co_await client();
    for (int i = 0; i < 20; ++i) ws.send(Opcode::binary, text_of(60000));
    for (int i = 0; i < 20; ++i) EXPECT_EQ((co_await ws.read_message()).payload.size(), 60000u);
  });
}

// --- 10: auto-fragmentation

TEST_F(WsConformance, Group10AutoFragmentation) {
  options.max_frame_size = 1300;
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    std::string payload = text_of(65536);
    // 10.1.1: the client fragments at 1300 too; the server reassembles and answers in 1300-byte frames.
    std::string frames;
    for (std::size_t i = 0; i < payload.size(); i += 1300)
      frames +=
          RawWs::frame(i ? Opcode::continuation : Opcode::text, payload.substr(i, 1300), i + 1300 >= payload.size());
    ws.raw(frames);
    RawFrame first = co_await ws.read();
    EXPECT_EQ(first.opcode, Opcode::text);
    EXPECT_FALSE(first.fin);
    EXPECT_EQ(first.payload.size(), 1300u);
    std::string all = first.payload;
    int count = 1;
    for (RawFrame f = first; !f.fin; ++count) {
      f = co_await ws.read();
      EXPECT_EQ(f.opcode, Opcode::continuation);
      all += f.payload;
      if (f.eof) break;
    }
    EXPECT_EQ(all, payload);
    EXPECT_EQ(count, 51);
  });
}

// --- 12, 13: permessage-deflate

TEST_F(WsConformance, Group12And13DeflateNegotiationAndEcho) {
  struct Offer {
    std::string header;
    std::string expect;  // in the response's Sec-WebSocket-Extensions
  };
  std::vector<Offer> offers = {
      {"permessage-deflate", "permessage-deflate"},
      {"permessage-deflate; client_no_context_takeover", "client_no_context_takeover"},
      {"permessage-deflate; server_no_context_takeover", "server_no_context_takeover"},
      {"permessage-deflate; server_max_window_bits=9", "server_max_window_bits=9"},
      {"permessage-deflate; server_max_window_bits=8", "server_max_window_bits=8"},
      {"permessage-deflate; client_max_window_bits", "permessage-deflate"},
      {"permessage-deflate; client_max_window_bits=10", "client_max_window_bits=10"},
      {"permessage-deflate; server_max_window_bits=16, permessage-deflate; client_no_context_takeover",
       "client_no_context_takeover"},  // the first offer is invalid: the second is taken
  };
  for (auto& offer : offers) {
    run([&]() -> Coro<void> {
      RawWs ws = co_await client("Sec-WebSocket-Extensions: " + offer.header + "\r\n");
      EXPECT_NE(ws.response.find("Sec-WebSocket-Extensions: permessage-deflate"), std::string::npos) << offer.header;
      EXPECT_NE(ws.response.find(offer.expect), std::string::npos) << ws.response;
      Inflater inflater;  // the server keeps its compression context unless asked not to: so do we
      for (std::size_t n : {16, 64, 256, 1024, 4096, 32768, 131072}) {
        std::string payload = text_of(n);
        // Sent compressed, with a fresh compressor each time (valid with or without context takeover).
        ws.send(Opcode::text, deflate_message(payload, 9 + static_cast<int>(n % 7)), true, /*rsv1=*/true);
        RawFrame f = co_await ws.read_message();
        EXPECT_EQ(f.opcode, Opcode::text);
        std::string got = f.rsv1 ? inflater.inflate(f.payload) : f.payload;
        EXPECT_EQ(got.size(), payload.size());
        EXPECT_TRUE(got == payload);
      }
      // A compressed message in fragments: RSV1 on the first only.
      std::string z = deflate_message(text_of(5000));
      ws.send(Opcode::binary, z.substr(0, 10), false, true);
      ws.send(Opcode::continuation, z.substr(10, 20), false);
      ws.send(Opcode::continuation, z.substr(30), true);
      RawFrame f = co_await ws.read_message();
      EXPECT_EQ(f.rsv1 ? inflater.inflate(f.payload) : f.payload, text_of(5000));
      ws.close_frame(cc::normal);
      co_await expect_close(ws, cc::normal);
    });
  }
}

TEST_F(WsConformance, DeflateRsv1OnContinuationIs1002) {
  run([&]() -> Coro<void> {
    RawWs ws = co_await client("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    std::string z = deflate_message("hello hello hello");
    ws.send(Opcode::text, z.substr(0, 3), false, true);
    ws.send(Opcode::continuation, z.substr(3), true, true);
    co_await expect_close(ws, cc::protocol_error);
  });
}

TEST_F(WsConformance, DeflateBombIsStoppedAtTheLimitWith1009) {
  options.max_message_size = 100000;
  run([&]() -> Coro<void> {
    RawWs ws = co_await client("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    std::string big(10'000'000, 'a');  // about 10 KB compressed
    ws.send(Opcode::binary, deflate_message(big), true, true);
    co_await expect_close(ws, cc::message_too_big);
  });
}

TEST_F(WsConformance, DeflateGarbageIs1007) {
  run([&]() -> Coro<void> {
    RawWs ws = co_await client("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    ws.send(Opcode::binary, std::string("\xff\xff\xff\xff garbage", 12), true, true);
    co_await expect_close(ws, cc::invalid_data);
  });
}

TEST_F(WsConformance, RsvWithoutDeflateIs1002) {
  run([&]() -> Coro<void> {
    RawWs ws = co_await client();
    ws.send(Opcode::text, deflate_message("hello"), true, true);
    co_await expect_close(ws, cc::protocol_error);
  });
}

}  // namespace
}  // namespace tulipa::test
