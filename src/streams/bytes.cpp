// Bytes' copying constructor (the rest is inline in bytes.hpp).
#include <cstring>

#include "tulipa/bytes.hpp"

namespace tulipa {

Bytes::Bytes(std::span<const std::byte> data) {
  if (data.empty()) return;
  chunk_ = detail::chunk_alloc(data.size());
  std::memcpy(chunk_.data, data.data(), data.size());
  size_ = data.size();
}

}  // namespace tulipa
