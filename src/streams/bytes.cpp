// Bytes' copying constructor (the rest is inline in bytes.hpp).
#include <cstring>
#include <stdexcept>

#include "tulipa/bytes.hpp"

namespace tulipa {

Bytes::Bytes(std::span<const std::byte> data) {
  if (data.empty()) return;
  if (data.size() > max_size) throw std::length_error("tulipa::Bytes: more than 4 GiB");
  detail::Chunk chunk = detail::chunk_alloc(data.size());
  std::memcpy(chunk.data, data.data(), data.size());
  *this = adopt(chunk, 0, data.size());
}

}  // namespace tulipa
