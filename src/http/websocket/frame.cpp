#include "tulipa/http/websocket_frame.hpp"

#include <cstring>

namespace tulipa::websocket {

std::size_t write_frame_header(std::byte* out, const FrameHeader& h) noexcept {
  auto* o = reinterpret_cast<unsigned char*>(out);
  o[0] = static_cast<unsigned char>((h.fin ? 0x80 : 0) | (h.rsv1 ? 0x40 : 0) | (h.rsv2 ? 0x20 : 0) |
                                    (h.rsv3 ? 0x10 : 0) | (static_cast<unsigned>(h.opcode) & 0x0F));
  unsigned char mask_bit = h.masked ? 0x80 : 0;
  std::size_t n;
  if (h.length < 126) {
    o[1] = static_cast<unsigned char>(mask_bit | h.length);
    n = 2;
  } else if (h.length <= 0xFFFF) {
    o[1] = mask_bit | 126;
    o[2] = static_cast<unsigned char>(h.length >> 8);
    o[3] = static_cast<unsigned char>(h.length);
    n = 4;
  } else {
    o[1] = mask_bit | 127;
    for (int i = 0; i < 8; ++i) o[2 + i] = static_cast<unsigned char>(h.length >> (56 - 8 * i));
    n = 10;
  }
  if (h.masked) {
    std::memcpy(o + n, h.mask, 4);
    n += 4;
  }
  return n;
}

std::size_t parse_frame_header(std::span<const std::byte> in, FrameHeader& h) noexcept {
  if (in.size() < 2) return 0;
  auto* p = reinterpret_cast<const unsigned char*>(in.data());
  unsigned len7 = p[1] & 0x7F;
  std::size_t n = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((p[1] & 0x80) ? 4 : 0);
  if (in.size() < n) return 0;
  h.fin = p[0] & 0x80;
  h.rsv1 = p[0] & 0x40;
  h.rsv2 = p[0] & 0x20;
  h.rsv3 = p[0] & 0x10;
  h.opcode = static_cast<Opcode>(p[0] & 0x0F);
  h.masked = p[1] & 0x80;
  std::size_t at = 2;
  if (len7 == 126) {
    h.length = (std::uint64_t{p[2]} << 8) | p[3];
    at = 4;
  } else if (len7 == 127) {
    h.length = 0;
    for (int i = 0; i < 8; ++i) h.length = (h.length << 8) | p[2 + i];
    at = 10;
  } else {
    h.length = len7;
  }
  if (h.masked) std::memcpy(h.mask, p + at, 4);
  return n;
}

void copy_masked(std::byte* out, const std::byte* in, std::size_t n, const std::uint8_t key[4],
                 std::uint64_t offset) noexcept {
  unsigned char k[4];
  for (int i = 0; i < 4; ++i) k[i] = key[(offset + i) & 3];
  std::uint64_t word;
  std::memcpy(&word, k, 4);
  std::memcpy(reinterpret_cast<unsigned char*>(&word) + 4, k, 4);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, in + i, 8);
    v ^= word;
    std::memcpy(out + i, &v, 8);
  }
  for (; i < n; ++i) out[i] = in[i] ^ static_cast<std::byte>(k[i & 3]);
}

void apply_mask(std::byte* p, std::size_t n, const std::uint8_t key[4], std::uint64_t offset) noexcept {
  copy_masked(p, p, n, key, offset);
}

}  // namespace tulipa::websocket
