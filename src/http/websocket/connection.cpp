#include "connection.hpp"

#include <stdlib.h>  // arc4random_buf

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "deflate.hpp"
#include "prepared.hpp"
#include "tulipa/detail/bytes_access.hpp"
#include "tulipa/loop.hpp"

namespace tulipa::websocket::detail {
namespace {

// Per-thread scratch space: compressed output, masked output, masked compressed input. Grown, never shrunk, so
// steady traffic allocates nothing.
thread_local std::vector<std::byte> tls_compressed;
thread_local std::vector<std::byte> tls_masked;
thread_local std::vector<std::byte> tls_inflate_in;

// Frames up to this payload size are copied behind their header on the stack and written as one piece.
constexpr std::size_t kSmallFrame = 2048;

std::span<const std::byte> as_bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

// The longest prefix of `s` of at most `max` bytes that ends on a code point boundary.
std::string_view cut_utf8(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

}  // namespace

struct WsConnection::OutNode : tulipa::detail::Pooled {
  OutNode* next = nullptr;
  std::shared_ptr<PreparedMessage::Shared> ref;  // a prepared frame, by reference
  tulipa::detail::Chunk own{};                   // or a copy
  const std::byte* data = nullptr;
  std::size_t size = 0;
  ~OutNode() {
    if (own.data) tulipa::detail::chunk_free(own);
  }
};

struct ClientHandshake {
  std::string key;
  std::string request;
  std::function<void(std::exception_ptr)> done;
};

WsConnection::WsConnection(EventLoop& loop, std::shared_ptr<const SharedConfig> config)
    : loop_(&loop), config_(std::move(config)), role_(Role::server) {}

WsConnection::WsConnection(EventLoop& loop, std::shared_ptr<const SharedConfig> config,
                           std::unique_ptr<Handler> handler, std::string host, std::string target, std::string origin,
                           std::function<void(std::exception_ptr)> done)
    : loop_(&loop), config_(std::move(config)), handler_(std::move(handler)), role_(Role::client) {
  const Options& o = config_->options;
  client_ = std::make_unique<ClientHandshake>();
  client_->key = generate_key();
  client_->done = std::move(done);
  std::string& r = client_->request;
  r = "GET " + target + " HTTP/1.1\r\nHost: " + host +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + client_->key +
      "\r\nSec-WebSocket-Version: 13\r\n";
  if (!origin.empty()) r += "Origin: " + origin + "\r\n";
  if (!o.subprotocols.empty()) {
    r += "Sec-WebSocket-Protocol: ";
    for (std::size_t i = 0; i < o.subprotocols.size(); ++i) r += (i ? ", " : "") + o.subprotocols[i];
    r += "\r\n";
  }
  if (o.deflate.enabled) r += "Sec-WebSocket-Extensions: " + deflate_offer(o.deflate) + "\r\n";
  for (auto& h : o.extra_headers) r += h + "\r\n";
  r += "\r\n";
}

// Every open WebSocket holds one (an idle browser of the chat: about 1 KiB in all, this included).
static_assert(sizeof(WsConnection) <= 256, "WsConnection outgrew its per-connection budget");

WsConnection::~WsConnection() {
  clear_queue();
  if (buf_.data) tulipa::detail::chunk_free(buf_);
  release_control();
}

void WsConnection::release_control() noexcept {
  if (ctrl_.data) tulipa::detail::chunk_free(std::exchange(ctrl_, tulipa::detail::Chunk{}));
  ctrl_len_ = 0;
}

// --- the handshake

void WsConnection::connection_made(Transport& transport) {
  transport_ = &transport;
  if (role_ == Role::client) transport.write(client_->request);
}

void WsConnection::open_upgraded(Transport& transport, AcceptResult&& accepted,
                                 std::span<const std::byte> already_read) {
  transport_ = &transport;
  open(std::move(accepted.handler), accepted.deflate, std::move(accepted.subprotocol), std::move(accepted.extensions),
       already_read);
}

void WsConnection::handshake_data(std::span<const std::byte> data) {
  const std::size_t limit = config_->options.max_handshake_size;
  std::string_view in(reinterpret_cast<const char*>(data.data()), data.size());
  // The head usually arrives in one read: it is then parsed where it lies (the loop's read buffer, valid during
  // this call) and nothing is copied. Only a head split across reads is gathered in rare_->hs_buf.
  std::size_t end;
  std::string held;
  std::string_view head;  // all bytes received so far: `in`, or `held`
  if (!rare_ || rare_->hs_buf.empty()) {
    end = in.find("\r\n\r\n");
    if (end == std::string_view::npos && in.size() <= limit) {
      rare().hs_buf.assign(in);
      return;
    }
    head = in;
  } else {
    std::string& buf = rare_->hs_buf;
    std::size_t old = buf.size();
    buf.append(in);
    end = buf.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
    if (end == std::string::npos && buf.size() <= limit) return;
    held = std::move(buf);
    buf = std::string();
    head = held;
  }
  if (end == std::string_view::npos) {  // no end of head within the limit
    if (role_ == Role::server) {
      transport_->write(std::string_view(
          "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
      state_ = State::closed;
      transport_->close();
    } else {
      auto done = std::exchange(client_->done, nullptr);
      state_ = State::closed;
      transport_->abort();
      if (done) done(std::make_exception_ptr(HandshakeError("websocket: handshake response too large")));
    }
    return;
  }
  if (end > limit) end = std::string::npos;
  std::span<const std::byte> rest;
  if (end != std::string::npos) rest = as_bytes(head.substr(end + 4));
  if (role_ == Role::server) {
    AcceptResult r;
    if (end == std::string::npos) {
      r.status = 431;
      r.response = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    } else {
      r = server_accept_head(head.substr(0, end), *config_);
    }
    transport_->write(r.response);
    if (r.status != 101) {
      state_ = State::closed;
      transport_->close();
      return;
    }
    open(std::move(r.handler), r.deflate, std::move(r.subprotocol), std::move(r.extensions), rest);
    return;
  }
  // Client: check the response.
  auto done = std::exchange(client_->done, nullptr);
  std::string why;
  std::optional<DeflateParams> deflate;
  std::string protocol, extensions;
  auto h = end == std::string::npos ? std::nullopt : parse_head(head.substr(0, end));
  if (!h) {
    why = "malformed handshake response";
  } else if (h->first_line.size() < 12 || h->first_line.substr(0, 9) != "HTTP/1.1 " ||
             h->first_line.substr(9, 3) != "101") {
    why = "server answered \"" + std::string(h->first_line) + "\"";
  } else if (!has_token(h->get("Upgrade"), "websocket") || !has_token(h->get("Connection"), "upgrade")) {
    why = "response lacks Upgrade: websocket / Connection: upgrade";
  } else if (h->get("Sec-WebSocket-Accept") != accept_key(client_->key)) {
    why = "wrong Sec-WebSocket-Accept";
  } else {
    protocol = std::string(h->get("Sec-WebSocket-Protocol"));
    const auto& ours = config_->options.subprotocols;
    if (!protocol.empty() && std::find(ours.begin(), ours.end(), protocol) == ours.end())
      why = "server chose subprotocol " + protocol + ", which was not offered";
    extensions = h->get_all("Sec-WebSocket-Extensions");
    if (why.empty() && !extensions.empty()) {
      if (config_->options.deflate.enabled) deflate = accept_deflate_response(extensions, config_->options.deflate);
      if (!deflate) why = "server answered with extensions that were not offered: " + extensions;
    }
  }
  if (!why.empty()) {
    state_ = State::closed;
    transport_->abort();
    if (done) done(std::make_exception_ptr(HandshakeError("websocket: " + why)));
    return;
  }
  client_.reset();
  // `done` first: the coroutine's WebSocket exists before the first message is delivered.
  std::string rest_copy(reinterpret_cast<const char*>(rest.data()), rest.size());
  open(std::move(handler_), deflate, std::move(protocol), std::move(extensions), {});
  if (done) done(nullptr);
  if (!rest_copy.empty() && state_ != State::closed) frames(as_bytes(rest_copy));
}

void WsConnection::open(std::unique_ptr<Handler> handler, std::optional<DeflateParams> deflate, std::string subprotocol,
                        std::string extensions, std::span<const std::byte> already_read) {
  handler_ = std::move(handler);
  if (rare_ || !subprotocol.empty() || !extensions.empty()) {
    rare().subprotocol = std::move(subprotocol);
    rare().extensions = std::move(extensions);
  }
  state_ = State::open;
  if (deflate) {
    const DeflateOptions& d = config_->options.deflate;
    deflate_ = true;
    bool server = role_ == Role::server;
    int ours = server ? deflate->server_max_window_bits : deflate->client_max_window_bits;
    int theirs = server ? deflate->client_max_window_bits : deflate->server_max_window_bits;
    compress_bits_ = static_cast<std::uint8_t>(zlib_window_bits(std::min<int>(ours, d.window_bits)));
    bool our_reset = server ? deflate->server_no_context_takeover : deflate->client_no_context_takeover;
    bool their_reset = server ? deflate->client_no_context_takeover : deflate->server_no_context_takeover;
    compressor_ = std::make_unique<Compressor>(compress_bits_, d.mem_level, our_reset);
    decompressor_ = std::make_unique<Decompressor>(theirs, their_reset);
  }
  schedule_ping();
  handler_->on_open(*this);
  if (!already_read.empty() && state_ != State::closed) frames(already_read);
}

// --- receiving

void WsConnection::data_received(std::span<const std::byte> data) {
  if (state_ == State::handshake) return handshake_data(data);
  if (state_ == State::closed) return;  // nothing is read after the close handshake or a failure
  frames(data);
}

void WsConnection::frames(std::span<const std::byte> data) {
  const std::byte* p = data.data();
  const std::byte* end = p + data.size();
  while (p != end) {
    if (!in_payload_) {
      // The header: 2 bytes, then its extended length and masking key.
      while (hdr_len_ < 2 && p != end) hdr_[hdr_len_++] = static_cast<std::uint8_t>(*p++);
      if (hdr_len_ < 2) return;
      unsigned len7 = hdr_[1] & 0x7F;
      std::size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((hdr_[1] & 0x80) ? 4 : 0);
      std::size_t take = std::min<std::size_t>(need - hdr_len_, static_cast<std::size_t>(end - p));
      std::memcpy(hdr_ + hdr_len_, p, take);
      hdr_len_ = static_cast<std::uint8_t>(hdr_len_ + take);
      p += take;
      if (hdr_len_ < need) return;
      hdr_len_ = 0;
      if (!begin_frame()) return;
      if (remaining_ == 0 && !end_frame()) return;
      continue;
    }
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(end - p)));
    if (!frame_payload(p, n)) return;
    p += n;
    remaining_ -= n;
    frame_off_ += n;
    if (remaining_ == 0 && !end_frame()) return;
  }
}

bool WsConnection::begin_frame() {
  FrameHeader h;
  parse_frame_header(std::span(reinterpret_cast<const std::byte*>(hdr_), max_frame_header), h);
  const Options& o = config_->options;
  if (h.rsv2 || h.rsv3) return fail(close_code::protocol_error, "reserved bits set");
  if (h.masked != (role_ == Role::server))
    return fail(close_code::protocol_error,
                role_ == Role::server ? "unmasked frame from a client" : "masked frame from a server");
  if (h.length >> 63) return fail(close_code::protocol_error, "frame length above 2^63");
  auto op = static_cast<std::uint8_t>(h.opcode);
  if (op & 8) {
    if (op > 10) return fail(close_code::protocol_error, "reserved control opcode");
    if (!h.fin) return fail(close_code::protocol_error, "fragmented control frame");
    if (h.length > max_control_payload) return fail(close_code::protocol_error, "control frame above 125 bytes");
    if (h.rsv1) return fail(close_code::protocol_error, "RSV1 on a control frame");
    ctrl_len_ = 0;
    if (h.length != 0 && !ctrl_.data) ctrl_ = tulipa::detail::chunk_alloc(max_control_payload);
  } else if (op == 0) {
    if (!msg_active_) return fail(close_code::protocol_error, "continuation frame without a message");
    if (h.rsv1) return fail(close_code::protocol_error, "RSV1 on a continuation frame");
  } else if (op <= 2) {
    if (msg_active_) return fail(close_code::protocol_error, "new message before the last one ended");
    if (h.rsv1 && !deflate_) return fail(close_code::protocol_error, "RSV1 without permessage-deflate");
    msg_active_ = true;
    msg_text_ = op == 1;
    msg_compressed_ = h.rsv1;
    msg_size_ = 0;
    utf8_.reset();
  } else {
    return fail(close_code::protocol_error, "reserved data opcode");
  }
  if (!(op & 8) && !msg_compressed_) {
    if (msg_size_ + h.length > o.max_message_size) return fail(close_code::message_too_big, "message too big");
    ensure_capacity(buf_size_ + static_cast<std::size_t>(h.length));
  }
  op_ = h.opcode;
  fin_ = h.fin;
  masked_ = h.masked;
  std::memcpy(mask_, h.mask, 4);
  remaining_ = h.length;
  frame_off_ = 0;
  in_payload_ = h.length != 0;
  return true;
}

void WsConnection::ensure_capacity(std::size_t cap) {
  if (cap <= buf_.capacity) return;
  std::size_t want = std::max(cap, buf_.capacity * 2);
  tulipa::detail::Chunk c = tulipa::detail::chunk_alloc(want);
  if (buf_size_) std::memcpy(c.data, buf_.data, buf_size_);
  if (buf_.data) tulipa::detail::chunk_free(buf_);
  buf_ = c;
}

bool WsConnection::frame_payload(const std::byte* p, std::size_t n) {
  if (is_control(op_)) {
    std::byte* out = ctrl_.data + ctrl_len_;
    if (masked_)
      copy_masked(out, p, n, mask_, frame_off_);
    else
      std::memcpy(out, p, n);
    ctrl_len_ = static_cast<std::uint8_t>(ctrl_len_ + n);
    return true;
  }
  const Options& o = config_->options;
  if (!msg_compressed_) {
    std::byte* out = buf_.data + buf_size_;
    if (masked_)
      copy_masked(out, p, n, mask_, frame_off_);
    else
      std::memcpy(out, p, n);
    if (msg_text_ && !utf8_.feed(std::span<const std::byte>(out, n)))
      return fail(close_code::invalid_data, "invalid UTF-8 in a text message");
    buf_size_ += n;
    msg_size_ += n;
    return true;
  }
  const std::byte* in = p;
  if (masked_) {
    if (tls_inflate_in.size() < n) tls_inflate_in.resize(std::max<std::size_t>(n, 4096));
    copy_masked(tls_inflate_in.data(), p, n, mask_, frame_off_);
    in = tls_inflate_in.data();
  }
  std::size_t before = buf_size_;
  std::size_t limit = o.max_message_size - static_cast<std::size_t>(msg_size_ - buf_size_);
  bool last = fin_ && remaining_ == n;
  Decompressor::Result r;
  std::byte* data = buf_.data;
  std::size_t cap = buf_.capacity;
  r = decompressor_->inflate(std::span(in, n), last, data, cap, buf_size_, limit, [&](std::size_t want) {
    ensure_capacity(want);
    data = buf_.data;
    cap = buf_.capacity;
  });
  msg_size_ += buf_size_ - before;
  if (r == Decompressor::Result::too_big) return fail(close_code::message_too_big, "message too big (inflated)");
  if (r == Decompressor::Result::error) return fail(close_code::invalid_data, "invalid compressed data");
  if (msg_text_ && !utf8_.feed(std::span<const std::byte>(buf_.data + before, buf_size_ - before)))
    return fail(close_code::invalid_data, "invalid UTF-8 in a text message");
  return true;
}

bool WsConnection::end_frame() {
  in_payload_ = false;
  if (is_control(op_)) {
    bool go_on = control_frame();
    release_control();
    return go_on;
  }
  if (msg_compressed_ && fin_ && frame_off_ == 0) {
    // An empty final frame of a compressed message: the tail still has to go through the inflater.
    if (!frame_payload(nullptr, 0)) return false;
  }
  if (fin_) {
    if (msg_text_ && !utf8_.complete()) return fail(close_code::invalid_data, "text message ends inside a code point");
    msg_active_ = false;
    return deliver(true);
  }
  if (config_->options.fragments) return deliver(false);
  return true;
}

bool WsConnection::deliver(bool fin) {
  Message m;
  m.data = buf_.data ? tulipa::detail::BytesAccess::adopt(buf_, 0, buf_size_) : Bytes();
  m.text = msg_text_;
  m.fin = fin;
  buf_ = {};
  buf_size_ = 0;
  if (state_ != State::open && state_ != State::closing) return false;
  handler_->on_message(*this, std::move(m));
  return state_ != State::closed;
}

bool WsConnection::control_frame() {
  auto payload = std::span<const std::byte>(ctrl_.data, ctrl_len_);
  switch (op_) {
    case Opcode::ping:
      if (!close_sent_) send_frame(Opcode::pong, true, false, payload);
      handler_->on_ping(*this, payload);
      return state_ != State::closed;
    case Opcode::pong:
      if (awaiting_pong_) {
        awaiting_pong_ = false;
        schedule_ping();
      }
      handler_->on_pong(*this, payload);
      return state_ != State::closed;
    default:
      break;
  }
  // Close.
  std::uint16_t code = close_code::no_status;
  std::string_view reason;
  if (ctrl_len_ == 1) return fail(close_code::protocol_error, "close frame with a 1-byte payload");
  if (ctrl_len_ >= 2) {
    code = static_cast<std::uint16_t>((std::to_integer<unsigned>(ctrl_.data[0]) << 8) |
                                      std::to_integer<unsigned>(ctrl_.data[1]));
    if (!is_valid_close_code(code)) return fail(close_code::protocol_error, "invalid close code");
    reason = std::string_view(reinterpret_cast<const char*>(ctrl_.data + 2), ctrl_len_ - 2u);
    if (!is_valid_utf8(reason)) return fail(close_code::invalid_data, "close reason is not UTF-8");
  }
  close_received_ = true;
  close_code_ = code;
  set_close_reason(reason);
  if (!close_sent_) send_close_frame(code == close_code::no_status ? 0 : code, {});
  state_ = State::closed;
  if (role_ == Role::server) {
    timer_.cancel();
    transport_->close();
  } else {
    arm_close_timer();  // the server closes TCP; if it does not, we do
  }
  return false;
}

bool WsConnection::fail(std::uint16_t code, std::string_view reason) {
  if (state_ == State::closed) return false;
  if (!close_sent_) send_close_frame(code, reason);
  close_code_ = code;
  set_close_reason(reason);
  state_ = State::closed;
  // Half-close and read on (discarding) until the peer closes: closing with unread input would make the kernel
  // answer with a reset, which can destroy our close frame before the peer reads it.
  if (transport_->can_write_eof())
    transport_->write_eof();
  else
    transport_->close();
  arm_close_timer();  // a peer that never closes (or does not read) must not keep the connection
  return false;
}

bool WsConnection::eof_received() { return false; }

void WsConnection::connection_lost(std::exception_ptr exc) {
  lost_ = true;
  timer_.cancel();
  clear_queue();
  if (state_ == State::handshake) {
    state_ = State::closed;
    if (client_ && client_->done) {
      auto done = std::exchange(client_->done, nullptr);
      done(exc ? exc : std::make_exception_ptr(HandshakeError("websocket: connection closed during the handshake")));
    }
    return;
  }
  state_ = State::closed;
  if (handler_) handler_->on_close(*this, close_code_, rare_ ? rare_->close_reason : std::string_view(), exc);
}

// --- sending

void WsConnection::pause_writing() { paused_ = true; }

void WsConnection::resume_writing() {
  paused_ = false;
  flush_queue();
}

std::size_t WsConnection::buffered_amount() const noexcept {
  return out_bytes_ + (transport_ && !lost_ ? transport_->get_write_buffer_size() : 0);
}

std::size_t WsConnection::compression_memory() const noexcept {
  return (compressor_ ? compressor_->memory() : 0) + (decompressor_ ? decompressor_->memory() : 0);
}

void WsConnection::emit(std::span<const std::span<const std::byte>> pieces) {
  if (lost_) return;
  if (out_head_ || paused_) return enqueue(pieces, nullptr);
  if (pieces.size() == 1)
    transport_->write(pieces[0]);
  else
    transport_->writelines(pieces);
}

void WsConnection::enqueue(std::span<const std::span<const std::byte>> pieces,
                           std::shared_ptr<PreparedMessage::Shared> ref) {
  auto* node = new OutNode;
  if (ref) {
    node->data = pieces[0].data();
    node->size = pieces[0].size();
    node->ref = std::move(ref);
  } else {
    std::size_t total = 0;
    for (auto& p : pieces) total += p.size();
    node->own = tulipa::detail::chunk_alloc(total);
    std::size_t at = 0;
    for (auto& p : pieces) {
      if (!p.empty()) std::memcpy(node->own.data + at, p.data(), p.size());
      at += p.size();
    }
    node->data = node->own.data;
    node->size = total;
  }
  (out_tail_ ? out_tail_->next : out_head_) = node;
  out_tail_ = node;
  out_bytes_ += node->size;
}

void WsConnection::flush_queue() {
  while (out_head_ && !paused_ && !lost_) {
    OutNode* n = out_head_;
    out_head_ = n->next;
    if (!out_head_) out_tail_ = nullptr;
    out_bytes_ -= n->size;
    transport_->write(std::span(n->data, n->size));
    delete n;
  }
  if (!out_head_ && !paused_ && !lost_ && handler_ && state_ != State::handshake) handler_->on_drain(*this);
}

void WsConnection::clear_queue() noexcept {
  while (OutNode* n = out_head_) {
    out_head_ = n->next;
    delete n;
  }
  out_tail_ = nullptr;
  out_bytes_ = 0;
}

void WsConnection::check_slow_consumer() {
  const Options& o = config_->options;
  if (o.slow_consumer != SlowConsumer::drop || state_ != State::open) return;
  if (buffered_amount() <= o.send_queue_limit) return;
  // Drop what waits for this peer; the close frame goes after what the transport already holds.
  clear_queue();
  paused_ = false;
  send_close_frame(o.drop_code, "slow consumer: send queue full");
  close_code_ = o.drop_code;
  set_close_reason("slow consumer: send queue full");
  state_ = State::closed;
  transport_->close();
  arm_close_timer();
}

void WsConnection::send_frame(Opcode op, bool fin, bool rsv1, std::span<const std::byte> payload) {
  FrameHeader h;
  h.opcode = op;
  h.fin = fin;
  h.rsv1 = rsv1;
  h.length = payload.size();
  std::byte hdr[max_frame_header];
  if (role_ == Role::client) {
    h.masked = true;
    arc4random_buf(h.mask, 4);
    if (tls_masked.size() < payload.size()) tls_masked.resize(std::max<std::size_t>(payload.size(), 4096));
    copy_masked(tls_masked.data(), payload.data(), payload.size(), h.mask, 0);
    payload = std::span<const std::byte>(tls_masked.data(), payload.size());
  }
  std::size_t n = write_frame_header(hdr, h);
  if (payload.size() <= kSmallFrame) {
    // A small frame goes out as one contiguous buffer: one send() of one piece costs the kernel less than a
    // sendmsg of two (measured: the echo path is ~90% kernel time).
    std::byte frame[max_frame_header + kSmallFrame];
    std::memcpy(frame, hdr, n);
    if (!payload.empty()) std::memcpy(frame + n, payload.data(), payload.size());
    std::span<const std::byte> one[1] = {std::span<const std::byte>(frame, n + payload.size())};
    return emit(one);
  }
  std::span<const std::byte> pieces[2] = {std::span<const std::byte>(hdr, n), payload};
  emit(pieces);
}

void WsConnection::send_close_frame(std::uint16_t code, std::string_view reason) {
  unsigned char payload[max_control_payload];
  std::size_t n = 0;
  if (code) {
    payload[0] = static_cast<unsigned char>(code >> 8);
    payload[1] = static_cast<unsigned char>(code);
    reason = cut_utf8(reason, max_control_payload - 2);
    if (!reason.empty()) std::memcpy(payload + 2, reason.data(), reason.size());
    n = 2 + reason.size();
  }
  close_sent_ = true;
  send_frame(Opcode::close, true, false, std::span(reinterpret_cast<const std::byte*>(payload), n));
}

bool WsConnection::send(std::span<const std::byte> data, bool text) {
  if (state_ != State::open) return false;
  const Options& o = config_->options;
  bool rsv1 = false;
  if (deflate_ && data.size() >= o.deflate.min_size) {
    compressor_->compress(data, tls_compressed);
    data = tls_compressed;
    rsv1 = true;
  }
  Opcode op = text ? Opcode::text : Opcode::binary;
  if (o.max_frame_size == 0 || data.size() <= o.max_frame_size) {
    send_frame(op, true, rsv1, data);
  } else {
    // Client frames are masked into tls_masked, which the compressed payload is not: no aliasing.
    std::size_t at = 0;
    while (at < data.size()) {
      std::size_t n = std::min(o.max_frame_size, data.size() - at);
      send_frame(at == 0 ? op : Opcode::continuation, at + n == data.size(), at == 0 && rsv1, data.subspan(at, n));
      at += n;
    }
  }
  check_slow_consumer();
  return true;
}

bool WsConnection::send(const PreparedMessage& message) {
  if (state_ != State::open) return false;
  PreparedMessage::Shared& s = *message.shared();
  if (role_ == Role::client) return send(s.payload(), s.text);
  std::span<const std::byte> frame = s.plain_frame();
  if (deflate_ && s.payload().size() >= config_->options.deflate.min_size) {
    frame = s.compressed_frame(compress_bits_);
    compressor_->reset();  // our next message must not refer to what the receiver's window now holds
  }
  std::span<const std::byte> pieces[1] = {frame};
  if (out_head_ || paused_)
    enqueue(pieces, message.shared_ref());
  else if (!lost_)
    transport_->write(frame);
  check_slow_consumer();
  return true;
}

bool WsConnection::ping(std::span<const std::byte> payload) {
  if (payload.size() > max_control_payload) throw std::invalid_argument("websocket: ping payload above 125 bytes");
  if (state_ != State::open) return false;
  send_frame(Opcode::ping, true, false, payload);
  return true;
}

bool WsConnection::pong(std::span<const std::byte> payload) {
  if (payload.size() > max_control_payload) throw std::invalid_argument("websocket: pong payload above 125 bytes");
  if (state_ != State::open) return false;
  send_frame(Opcode::pong, true, false, payload);
  return true;
}

void WsConnection::close(std::uint16_t code, std::string_view reason) {
  if (!is_valid_close_code(code)) throw std::invalid_argument("websocket: invalid close code");
  if (state_ == State::handshake) {
    state_ = State::closed;
    if (transport_) transport_->close();
    return;
  }
  if (state_ != State::open) return;
  send_close_frame(code, reason);
  state_ = State::closing;
  arm_close_timer();
}

void WsConnection::abort() {
  if (transport_ && !lost_) transport_->abort();
}

// --- timers: keepalive, then the close timeout

void WsConnection::schedule_ping() {
  const Options& o = config_->options;
  timer_.cancel();
  if (o.ping_interval.count() <= 0 || state_ != State::open) return;
  timer_ = loop_->call_later(o.ping_interval, [this] { on_timer(); });
}

void WsConnection::arm_close_timer() {
  timer_.cancel();
  awaiting_pong_ = false;
  timer_ = loop_->call_later(config_->options.close_timeout, [this] { on_timer(); });
}

void WsConnection::on_timer() {
  if (lost_) return;
  if (state_ == State::open) {
    const Options& o = config_->options;
    if (awaiting_pong_) {
      fail(close_code::internal_error, "keepalive ping timeout");
      return;
    }
    awaiting_pong_ = true;
    send_frame(Opcode::ping, true, false, {});
    if (o.pong_timeout.count() > 0) timer_ = loop_->call_later(o.pong_timeout, [this] { on_timer(); });
    return;
  }
  // Closing or closed: the peer did not finish the close handshake (or did not read our close) in time.
  transport_->abort();
}

}  // namespace tulipa::websocket::detail
