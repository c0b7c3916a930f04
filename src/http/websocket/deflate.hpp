// permessage-deflate's zlib streams (RFC 7692 section 7): raw deflate (no zlib header), each message ended with a
// sync flush whose 00 00 FF FF tail is left off the wire (and appended again before inflating).
//
// Memory between messages (what an idle compressed connection holds): zlib's streams are large (an inflater ~7 KiB
// plus its window, a compressor ~8 × 2^window_bits at memLevel 5), and most connections are idle most of the time.
// So a connection holds a stream only while a message goes through it: the streams come from a per-thread pool
// (StreamPool in deflate.cpp, a few free streams per window size kept initialised) and go back to it when the
// message is done. Where context takeover applies, what the next message may refer to is only the last 2^bits
// bytes of uncompressed data: that window is kept instead (read with inflate/deflateGetDictionary, exactly as long
// as the data so far, at most 2^bits bytes) and given to the next stream with inflate/deflateSetDictionary. An
// idle connection thus holds at most its windows (≤ 4 KiB each way at the default 12 bits; nothing at all with
// no_context_takeover). The cost is a copy of the window in and out per message, and no zlib init: pooled streams
// are only reset. Both streams count the memory zlib takes through their own allocator; memory() reports the
// stream while held plus the kept window, which is what Connection::compression_memory() sums.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace tulipa::websocket::detail {

// zlib cannot compress with a 256-byte window (8 bits) in raw mode: RFC 7692's 8 becomes 9 (a larger window is
// always safe for the inflater; a compressor may use a smaller one than agreed).
inline int zlib_window_bits(int bits) noexcept { return bits < 9 ? 9 : bits; }

// A zlib stream at a fixed address (zlib's state points back to it) and the bytes zlib allocated for it.
struct ZStream {
  z_stream z{};
  std::size_t memory = 0;
  int bits = 0;
  int mem_level = 0;  // 0: an inflater
};

// The window kept between messages for context takeover: the last (at most 2^bits) bytes of uncompressed data.
class KeptWindow {
 public:
  std::size_t size() const noexcept { return size_; }
  const Bytef* data() const noexcept { return reinterpret_cast<const Bytef*>(bytes_.get()); }
  // Replaces the contents with `n` bytes written by `fill(buffer)`.
  template <class Fill>
  void assign(std::size_t n, Fill&& fill) {
    if (n > capacity_) {
      bytes_ = std::make_unique_for_overwrite<std::byte[]>(n);
      capacity_ = n;
    }
    size_ = n;
    if (n) fill(reinterpret_cast<Bytef*>(bytes_.get()));
  }
  void clear() noexcept {
    bytes_.reset();
    size_ = capacity_ = 0;
  }
  std::size_t memory() const noexcept { return capacity_; }

 private:
  std::unique_ptr<std::byte[]> bytes_;
  std::size_t size_ = 0, capacity_ = 0;
};

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
  void reset() noexcept { window_.clear(); }
  std::size_t memory() const noexcept { return window_.memory(); }  // no stream is held between messages
  int window_bits() const noexcept { return window_bits_; }

 private:
  KeptWindow window_;
  int window_bits_;
  int mem_level_;
  bool reset_;
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
  // capacity) and may throw. Stops with too_big as soon as out_size would exceed `limit`. The stream is held from
  // the first piece of a message to its end (then the window is kept and the stream goes back to the pool).
  template <class Grow>
  Result inflate(std::span<const std::byte> in, bool last, std::byte*& out, std::size_t& out_cap, std::size_t& out_size,
                 std::size_t limit, Grow&& grow);
  std::size_t memory() const noexcept { return (s_ ? s_->memory : 0) + window_.memory(); }
  const char* error_message() const noexcept { return s_ && s_->z.msg ? s_->z.msg : "invalid compressed data"; }

 private:
  Result run(const std::byte* in, std::size_t n, std::byte*& out, std::size_t& out_cap, std::size_t& out_size,
             std::size_t limit, void* grow_ctx, void (*grow)(void*, std::size_t));
  void end_message() noexcept;  // keeps the window (context takeover) and gives the stream back
  ZStream* s_ = nullptr;        // from the pool while a message is being inflated
  KeptWindow window_;
  int window_bits_;
  bool reset_;
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
  if (r == Result::ok) end_message();
  return r;
}

}  // namespace tulipa::websocket::detail
