#include "deflate.hpp"

#include <cstdlib>
#include <new>

namespace tulipa::websocket::detail {
namespace {

// zlib's allocator, counting into the stream's byte counter (opaque). A header before each block keeps its size.
voidpf counted_alloc(voidpf opaque, uInt items, uInt size) {
  std::size_t n = std::size_t{items} * size;
  auto* p = static_cast<std::size_t*>(std::malloc(n + 16));
  if (!p) return Z_NULL;
  *p = n;
  *static_cast<std::size_t*>(opaque) += n;
  return reinterpret_cast<char*>(p) + 16;
}
void counted_free(voidpf opaque, voidpf address) {
  auto* p = reinterpret_cast<std::size_t*>(static_cast<char*>(address) - 16);
  *static_cast<std::size_t*>(opaque) -= *p;
  std::free(p);
}

}  // namespace

Compressor::~Compressor() {
  if (ready_) deflateEnd(&z_);
}

void Compressor::reset() noexcept {
  if (ready_) deflateReset(&z_);
}

void Compressor::compress(std::span<const std::byte> in, std::vector<std::byte>& out) {
  if (!ready_) {
    z_.zalloc = counted_alloc;
    z_.zfree = counted_free;
    z_.opaque = &memory_;
    if (deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -window_bits_, mem_level_, Z_DEFAULT_STRATEGY) != Z_OK)
      throw std::bad_alloc();
    ready_ = true;
  }
  // deflateBound does not cover the sync flush's empty block: 16 bytes more.
  std::size_t bound = deflateBound(&z_, static_cast<uLong>(in.size())) + 16;
  if (out.size() < bound) out.resize(bound);
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z_.avail_in = static_cast<uInt>(in.size());
  std::size_t produced = 0;
  for (;;) {
    z_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    z_.avail_out = static_cast<uInt>(out.size() - produced);
    int rc = deflate(&z_, Z_SYNC_FLUSH);
    produced = out.size() - z_.avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::bad_alloc();
    if (z_.avail_in == 0 && z_.avail_out != 0) break;
    out.resize(out.size() * 2);
  }
  // A sync flush ends with an empty stored block, 00 00 FF FF: RFC 7692 7.2.1 leaves it off.
  if (produced >= 4) produced -= 4;
  out.resize(produced);
  if (reset_) deflateReset(&z_);
}

Decompressor::~Decompressor() {
  if (ready_) inflateEnd(&z_);
}

bool Decompressor::init() {
  z_.zalloc = counted_alloc;
  z_.zfree = counted_free;
  z_.opaque = &memory_;
  if (inflateInit2(&z_, -window_bits_) != Z_OK) return false;
  ready_ = true;
  return true;
}

Decompressor::Result Decompressor::run(const std::byte* in, std::size_t n, std::byte*& out, std::size_t& out_cap,
                                       std::size_t& out_size, std::size_t limit, void* grow_ctx,
                                       void (*grow)(void*, std::size_t)) {
  if (!ready_ && !init()) throw std::bad_alloc();
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in));
  z_.avail_in = static_cast<uInt>(n);
  bool more = true;  // zlib may hold output it had no room for, even with all input consumed
  while (z_.avail_in > 0 || more) {
    if (out_size == out_cap) {
      if (out_size > limit) return Result::too_big;
      grow(grow_ctx, out_cap < 1024 ? 1024 : out_cap * 2);
    }
    // Never let zlib write past limit + 1 bytes: a bomb is stopped as it inflates, not after.
    std::size_t room = out_cap - out_size;
    if (out_size + room > limit + 1) room = limit + 1 - out_size;
    z_.next_out = reinterpret_cast<Bytef*>(out + out_size);
    z_.avail_out = static_cast<uInt>(room);
    int rc = ::inflate(&z_, Z_SYNC_FLUSH);
    out_size += room - z_.avail_out;
    if (out_size > limit) return Result::too_big;
    more = z_.avail_out == 0;
    if (rc == Z_STREAM_END) {
      // A final block: what follows (if anything) starts a new raw stream in the same message (legal).
      inflateReset(&z_);
      continue;
    }
    if (rc == Z_BUF_ERROR) {
      if (more) continue;
      break;
    }
    if (rc != Z_OK) return Result::error;
  }
  return Result::ok;
}

}  // namespace tulipa::websocket::detail
