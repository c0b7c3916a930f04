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

// The streams of this thread not in use, a few per shape (inflater or compressor, window bits, memLevel), kept
// initialised and reset. A connection takes one for the length of a message, so a thread needs about as many as
// it has messages half-received at once; more than kMaxFree of a shape are ended when given back.
class StreamPool {
 public:
  static StreamPool& local() {
    thread_local StreamPool pool;
    return pool;
  }
  ~StreamPool() {
    for (std::size_t i = 0; i < count_; ++i) end(free_[i]);
  }

  // Throws std::bad_alloc when zlib cannot get memory.
  ZStream* take(int bits, int mem_level) {
    for (std::size_t i = 0; i < count_; ++i) {
      ZStream* s = free_[i];
      if (s->bits == bits && s->mem_level == mem_level) {
        free_[i] = free_[--count_];
        return s;
      }
    }
    auto* s = new ZStream;
    s->bits = bits;
    s->mem_level = mem_level;
    s->z.zalloc = counted_alloc;
    s->z.zfree = counted_free;
    s->z.opaque = &s->memory;
    int rc = mem_level ? deflateInit2(&s->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, mem_level, Z_DEFAULT_STRATEGY)
                       : inflateInit2(&s->z, -bits);
    if (rc != Z_OK) {
      delete s;
      throw std::bad_alloc();
    }
    return s;
  }
  void give_back(ZStream* s) noexcept {
    if (!s) return;
    if (s->mem_level ? deflateReset(&s->z) != Z_OK : inflateReset(&s->z) != Z_OK) return end(s);
    std::size_t same = 0;
    for (std::size_t i = 0; i < count_; ++i) same += free_[i]->bits == s->bits && free_[i]->mem_level == s->mem_level;
    if (same >= kMaxFree || count_ == kSlots) return end(s);
    free_[count_++] = s;
  }

 private:
  static constexpr std::size_t kMaxFree = 2, kSlots = 16;
  static void end(ZStream* s) noexcept {
    if (s->mem_level)
      deflateEnd(&s->z);
    else
      inflateEnd(&s->z);
    delete s;
  }
  ZStream* free_[kSlots] = {};
  std::size_t count_ = 0;
};

}  // namespace

Compressor::~Compressor() = default;

void Compressor::compress(std::span<const std::byte> in, std::vector<std::byte>& out) {
  StreamPool& pool = StreamPool::local();
  ZStream* s = pool.take(window_bits_, mem_level_);
  struct GiveBack {
    StreamPool& pool;
    ZStream* s;
    ~GiveBack() { pool.give_back(s); }
  } give_back{pool, s};
  z_stream& z = s->z;
  // Context takeover: the peer's inflater still has the window of our earlier messages, which this one may use.
  if (!reset_ && window_.size() && deflateSetDictionary(&z, window_.data(), static_cast<uInt>(window_.size())) != Z_OK)
    throw std::bad_alloc();
  // deflateBound does not cover the sync flush's empty block: 16 bytes more.
  std::size_t bound = deflateBound(&z, static_cast<uLong>(in.size())) + 16;
  if (out.size() < bound) out.resize(bound);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::size_t produced = 0;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    z.avail_out = static_cast<uInt>(out.size() - produced);
    int rc = deflate(&z, Z_SYNC_FLUSH);
    produced = out.size() - z.avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::bad_alloc();
    if (z.avail_in == 0 && z.avail_out != 0) break;
    out.resize(out.size() * 2);
  }
  // A sync flush ends with an empty stored block, 00 00 FF FF: RFC 7692 7.2.1 leaves it off.
  if (produced >= 4) produced -= 4;
  out.resize(produced);
  if (!reset_) {
    uInt n = 0;
    deflateGetDictionary(&z, Z_NULL, &n);
    window_.assign(n, [&](Bytef* to) { deflateGetDictionary(&z, to, &n); });
  }
}

Decompressor::~Decompressor() { StreamPool::local().give_back(s_); }

void Decompressor::end_message() noexcept {
  if (!reset_) {
    uInt n = 0;
    inflateGetDictionary(&s_->z, Z_NULL, &n);
    try {
      window_.assign(n, [&](Bytef* to) { inflateGetDictionary(&s_->z, to, &n); });
    } catch (const std::bad_alloc&) {
      return;  // no memory for the window: keep the whole stream instead
    }
  }
  StreamPool::local().give_back(s_);
  s_ = nullptr;
}

Decompressor::Result Decompressor::run(const std::byte* in, std::size_t n, std::byte*& out, std::size_t& out_cap,
                                       std::size_t& out_size, std::size_t limit, void* grow_ctx,
                                       void (*grow)(void*, std::size_t)) {
  if (!s_) {
    s_ = StreamPool::local().take(window_bits_, 0);
    if (!reset_ && window_.size() &&
        inflateSetDictionary(&s_->z, window_.data(), static_cast<uInt>(window_.size())) != Z_OK)
      return Result::error;
  }
  z_stream& z = s_->z;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in));
  z.avail_in = static_cast<uInt>(n);
  bool more = true;  // zlib may hold output it had no room for, even with all input consumed
  while (z.avail_in > 0 || more) {
    if (out_size == out_cap) {
      if (out_size > limit) return Result::too_big;
      grow(grow_ctx, out_cap < 1024 ? 1024 : out_cap * 2);
    }
    // Never let zlib write past limit + 1 bytes: a bomb is stopped as it inflates, not after.
    std::size_t room = out_cap - out_size;
    if (out_size + room > limit + 1) room = limit + 1 - out_size;
    z.next_out = reinterpret_cast<Bytef*>(out + out_size);
    z.avail_out = static_cast<uInt>(room);
    int rc = ::inflate(&z, Z_SYNC_FLUSH);
    out_size += room - z.avail_out;
    if (out_size > limit) return Result::too_big;
    more = z.avail_out == 0;
    if (rc == Z_STREAM_END) {
      // A final block: what follows (if anything) starts a new raw stream in the same message (legal).
      inflateReset(&z);
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
