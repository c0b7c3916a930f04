// Internals of bytes.hpp: how the library (stream readers, WebSocket messages) hands a chunk it filled to a Bytes.
#pragma once

#include <cstddef>

#include "tulipa/bytes.hpp"

namespace tulipa::detail {

struct BytesAccess {
  // A Bytes that takes ownership of `chunk` (as chunk_alloc gave it), whose bytes [begin, begin + size) are the
  // content.
  static Bytes adopt(Chunk chunk, std::size_t begin, std::size_t size) noexcept {
    return Bytes::adopt(chunk, begin, size);
  }
};

}  // namespace tulipa::detail
