// A raw-frame WebSocket client for the conformance tests (the Autobahn TestSuite's fuzzing client's job): it sends
// any frame, valid or not, with any bits, split anywhere, and reads frames back as they are on the wire.
#pragma once

#include <zlib.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "tulipa/http/websocket_frame.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/streams.hpp"

namespace tulipa::test {

struct RawFrame {
  websocket::Opcode opcode{};
  bool fin = false;
  bool rsv1 = false;
  std::string payload{};
  bool eof = false;  // the server closed TCP instead of sending a frame
  std::uint16_t close_code() const {
    return payload.size() >= 2 ? static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                                            static_cast<unsigned char>(payload[1]))
                               : 0;
  }
};

class RawWs {
 public:
  RawWs(StreamReader r, StreamWriter w) : r_(std::move(r)), w_(std::move(w)) {}

  // Connects and upgrades; `extra` are extra request header lines ("Name: v\r\n"), `then` bytes sent right behind
  // the request; `step` > 0 sends all that in pieces of `step` bytes, each drained before the next (a head the
  // server gathers across reads). The response head is kept.
  static Coro<RawWs> open(EventLoop& loop, std::uint16_t port, std::string extra = {}, std::size_t step = 0,
                          std::string then = {}) {
    auto [r, w] = co_await open_connection(loop, "127.0.0.1", port);
    RawWs ws(std::move(r), std::move(w));
    std::string request =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
        extra + "\r\n" + then;
    if (step == 0) {
      ws.w_.write(request);
    } else {
      Coro<void> sending = ws.raw_chunked(std::move(request), step);
      co_await sending;
    }
    Bytes head = co_await ws.r_.readuntil(std::string_view("\r\n\r\n"));
    ws.response = head.str();
    co_return ws;
  }

  // One frame: masked with a fixed key unless mask is false.
  static std::string frame(websocket::Opcode op, std::string_view payload, bool fin = true, bool rsv1 = false,
                           bool rsv2 = false, bool rsv3 = false, bool mask = true) {
    websocket::FrameHeader h;
    h.opcode = op;
    h.fin = fin;
    h.rsv1 = rsv1;
    h.rsv2 = rsv2;
    h.rsv3 = rsv3;
    h.masked = mask;
    const std::uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    std::memcpy(h.mask, key, 4);
    h.length = payload.size();
    std::string out(websocket::max_frame_header, '\0');
    out.resize(websocket::write_frame_header(reinterpret_cast<std::byte*>(out.data()), h));
    std::size_t at = out.size();
    out += payload;
    if (mask) websocket::apply_mask(reinterpret_cast<std::byte*>(out.data() + at), payload.size(), key, 0);
    return out;
  }
  void send(websocket::Opcode op, std::string_view payload, bool fin = true, bool rsv1 = false, bool rsv2 = false,
            bool rsv3 = false, bool mask = true) {
    raw(frame(op, payload, fin, rsv1, rsv2, rsv3, mask));
  }
  void raw(std::string_view bytes) { w_.write(bytes); }
  // Closes our side of TCP.
  void close_tcp() { w_.close(); }
  // Sends `bytes` in pieces of `step` bytes, each its own write (the server sees them in separate reads, mostly).
  Coro<void> raw_chunked(std::string bytes, std::size_t step) {
    for (std::size_t i = 0; i < bytes.size(); i += step) {
      w_.write(std::string_view(bytes).substr(i, step));
      co_await w_.drain();
    }
  }
  void close_frame(std::uint16_t code, std::string_view reason = {}) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p += reason;
    send(websocket::Opcode::close, p);
  }

  Coro<RawFrame> read() {
    RawFrame f;
    std::string hdr;
    try {
      Bytes two = co_await r_.readexactly(2);
      hdr = two.str();
    } catch (const IncompleteReadError&) {
      f.eof = true;
      co_return f;
    }
    unsigned len7 = static_cast<unsigned char>(hdr[1]) & 0x7F;
    std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (ext) hdr += (co_await r_.readexactly(ext)).str();
    websocket::FrameHeader fh;
    websocket::parse_frame_header(std::as_bytes(std::span(hdr.data(), hdr.size())), fh);
    f.opcode = fh.opcode;
    f.fin = fh.fin;
    f.rsv1 = fh.rsv1;
    if (fh.length) f.payload = (co_await r_.readexactly(fh.length)).str();
    co_return f;
  }
  // Reads frames until a data message is complete (skipping nothing: control frames are returned as they come).
  Coro<RawFrame> read_message() {
    RawFrame m = co_await read();
    while (!m.eof && !m.fin && !websocket::is_control(m.opcode)) {
      RawFrame next = co_await read();
      if (next.eof) co_return next;
      m.payload += next.payload;
      m.fin = next.fin;
    }
    co_return m;
  }
  // Reads until EOF; true when the server closed TCP (after whatever frames came first).
  Coro<bool> closed() {
    for (;;) {
      RawFrame f = co_await read();
      if (f.eof) co_return true;
    }
  }

  std::string response;

 private:
  StreamReader r_;
  StreamWriter w_;
};

// Lets connections that are ending (a close handshake just done, a peer that exited) run their connection_lost
// before the test's loop goes: a few loop passes, each running what is ready (loopback delivers at once).
inline void settle(EventLoop& loop) {
  for (int i = 0; i < 10; ++i) {
    loop.call_soon([&loop] { loop.stop(); });
    loop.run_forever();
  }
}

// Raw deflate of one message with the permessage-deflate tail removed, and the reverse (test side).
inline std::string deflate_message(std::string_view in, int window_bits = 15) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(in.size() + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_SYNC_FLUSH);
  out.resize(out.size() - z.avail_out - 4);
  deflateEnd(&z);
  return out;
}
// An inflater that keeps its window across messages (context takeover).
class Inflater {
 public:
  Inflater() { inflateInit2(&z_, -15); }
  ~Inflater() { inflateEnd(&z_); }
  std::string inflate(std::string in) {
    in += std::string("\x00\x00\xff\xff", 4);
    std::string out(1 << 20, '\0');
    z_.next_in = reinterpret_cast<Bytef*>(in.data());
    z_.avail_in = static_cast<uInt>(in.size());
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = static_cast<uInt>(out.size());
    ::inflate(&z_, Z_SYNC_FLUSH);
    out.resize(out.size() - z_.avail_out);
    return out;
  }

 private:
  z_stream z_{};
};
inline std::string inflate_message(std::string in) {
  in += std::string("\x00\x00\xff\xff", 4);
  z_stream z{};
  inflateInit2(&z, -15);
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  inflate(&z, Z_SYNC_FLUSH);
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  return out;
}

}  // namespace tulipa::test
