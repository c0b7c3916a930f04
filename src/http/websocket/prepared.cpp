#include "prepared.hpp"

#include <cstring>

#include "deflate.hpp"

namespace tulipa::websocket {

PreparedMessage::PreparedMessage(std::span<const std::byte> payload, bool text) : shared_(std::make_shared<Shared>()) {
  FrameHeader h;
  h.opcode = text ? Opcode::text : Opcode::binary;
  h.length = payload.size();
  shared_->text = text;
  shared_->plain.resize(max_frame_header + payload.size());
  shared_->header_size = write_frame_header(shared_->plain.data(), h);
  shared_->plain.resize(shared_->header_size + payload.size());
  if (!payload.empty()) std::memcpy(shared_->plain.data() + shared_->header_size, payload.data(), payload.size());
}

PreparedMessage::~PreparedMessage() = default;

std::span<const std::byte> PreparedMessage::Shared::compressed_frame(int window_bits) {
  auto& frame = compressed[static_cast<std::size_t>(window_bits & 15)];
  if (frame.empty()) {
    detail::Compressor c(window_bits, 8, true);
    std::vector<std::byte> body;
    c.compress(payload(), body);
    FrameHeader h;
    h.opcode = text ? Opcode::text : Opcode::binary;
    h.rsv1 = true;
    h.length = body.size();
    frame.resize(max_frame_header + body.size());
    std::size_t n = write_frame_header(frame.data(), h);
    frame.resize(n + body.size());
    if (!body.empty()) std::memcpy(frame.data() + n, body.data(), body.size());
  }
  return frame;
}

}  // namespace tulipa::websocket
