// permessage-deflate's zlib streams (RFC 7692 section 7): raw deflate (no zlib header), each message ended with a
// sync flush whose 00 00 FF FF tail is left off the wire (and appended again before inflating). Both streams count
// the memory zlib takes through their own allocator, which is what Connection::compression_memory() reports.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace tulipa::websocket::detail {

// zlib cannot compress with a 256-byte window (8 bits) in raw mode: RFC 7692's 8 becomes 9 (a larger window is
// always safe for the inflater; a compressor may use a smaller one than agreed).
inline int zlib_window_bits(int bits) noexcept { return bits < 9 ? 9 : bits; }

class Compressor {
 public:
  Compressor(int window_bits, int mem_level, bool reset_each_message) noexcept
      : window_bits_(zlib_window_bits(window_bits)), mem_level_(mem_level), reset_(reset_each_message) {}
  ~Compressor();
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;

  // Compresses one whole message into `out` (replacing its contents), without the trailing 00 00 FF FF.
  // Throws std::bad_alloc when zlib cannot get memory.
  void compress(std::span<const std::byte> in, std::vector<std::byte>& out);
  // The next message must not refer to earlier ones (after a message compressed elsewhere was sent in between).
  void reset() noexcept;
  std::size_t memory() const noexcept { return memory_; }
  int window_bits() const noexcept { return window_bits_; }

 private:
  z_stream z_{};
  bool ready_ = false;
  int window_bits_;
  int mem_level_;
  bool reset_;
  std::size_t memory_ = 0;
};

class Decompressor {
 public:
  Decompressor(int window_bits, bool reset_each_message) noexcept
      : window_bits_(zlib_window_bits(window_bits)), reset_(reset_each_message) {}
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  enum class Result { ok, too_big, error };
  // Inflates `in` (part of one message's compressed payload; `last` appends the 00 00 FF FF tail and ends the
  // message) into `out` from out_size on, growing it with `grow(min_capacity)` which returns the new buffer (and
  // capacity) and may throw. Stops with too_big as soon as out_size would exceed `limit`.
  template <class Grow>
  Result inflate(std::span<const std::byte> in, bool last, std::byte*& out, std::size_t& out_cap, std::size_t& out_size,
                 std::size_t limit, Grow&& grow);
  std::size_t memory() const noexcept { return memory_; }
  const char* error_message() const noexcept { return z_.msg ? z_.msg : "invalid compressed data"; }

 private:
  bool init();
  Result run(const std::byte* in, std::size_t n, std::byte*& out, std::size_t& out_cap, std::size_t& out_size,
             std::size_t limit, void* grow_ctx, void (*grow)(void*, std::size_t));
  z_stream z_{};
  bool ready_ = false;
  int window_bits_;
  bool reset_;
  std::size_t memory_ = 0;
};

template <class Grow>
Decompressor::Result Decompressor::inflate(std::span<const std::byte> in, bool last, std::byte*& out,
                                           std::size_t& out_cap, std::size_t& out_size, std::size_t limit,
                                           Grow&& grow) {
  auto call = [](void* ctx, std::size_t n) { (*static_cast<Grow*>(ctx))(n); };
  Result r = run(in.data(), in.size(), out, out_cap, out_size, limit, &grow, call);
  if (r != Result::ok || !last) return r;
  static constexpr unsigned char tail[4] = {0x00, 0x00, 0xFF, 0xFF};
  r = run(reinterpret_cast<const std::byte*>(tail), 4, out, out_cap, out_size, limit, &grow, call);
  if (r == Result::ok && reset_) inflateReset(&z_);
  return r;
}

}  // namespace tulipa::websocket::detail
