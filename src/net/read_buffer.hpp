// The read buffer shared by every connection of a thread's loop: plain Protocols read into it and get a span of
// it in data_received (valid during that call only), so an idle connection holds no read buffer at all.
// Reads never nest (they happen in the loop's poll phase, one watcher at a time), so one buffer per thread is
// enough. Allocated on first use, 64 KiB: the most a single read(2) on a loopback TCP socket usually returns,
// and as large as any UDP datagram.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace tulipa::detail {

inline constexpr std::size_t read_buffer_size = 64 * 1024;

inline std::span<std::byte> shared_read_buffer() {
  thread_local std::unique_ptr<std::byte[]> buffer;
  if (!buffer) buffer.reset(new std::byte[read_buffer_size]);
  return {buffer.get(), read_buffer_size};
}

}  // namespace tulipa::detail
