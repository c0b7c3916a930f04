// SocketAddress: an IPv4, IPv6 or Unix-domain socket address, as the kernel takes it (a sockaddr_storage), without
// exposing OS headers. 132 bytes, held by value; transports do not store one per connection (peername() asks the
// kernel when called).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tulipa {

class SocketAddress {
 public:
  enum class Family : std::uint8_t { none, ipv4, ipv6, unix_path };
  static constexpr std::size_t capacity = 128;  // sizeof(sockaddr_storage) on Linux

  SocketAddress() noexcept = default;

  // A numeric address: "127.0.0.1", "::1", "fe80::1%lo". Throws std::invalid_argument for anything else, a NUL
  // inside included (host names are resolved by create_server / create_connection, not here).
  static SocketAddress parse(std::string_view ip, std::uint16_t port);
  // A Unix-domain socket path; a leading '\0' makes it an abstract-namespace name (Linux). Throws
  // std::invalid_argument if it does not fit in sun_path (107 bytes), or if a file system path holds a NUL.
  static SocketAddress unix_path(std::string_view path);
  // Copies `size` bytes of a sockaddr the kernel filled in (accept, recvfrom, getpeername). `size` > capacity
  // throws std::invalid_argument.
  static SocketAddress from_raw(const void* sockaddr, std::size_t size);

  Family family() const noexcept;
  bool empty() const noexcept { return size_ == 0; }
  // The port of an IP address (host order); 0 for Unix and empty addresses.
  std::uint16_t port() const noexcept;
  // "127.0.0.1", "::1", the socket path ("@name" for an abstract name), or "" when empty.
  std::string host() const;
  // "127.0.0.1:8080", "[::1]:8080", the path for Unix, or "" when empty.
  std::string to_string() const;

  // For the OS glue: the raw sockaddr and its length.
  const void* data() const noexcept { return storage_; }
  void* data() noexcept { return storage_; }
  std::uint32_t size() const noexcept { return size_; }
  void set_size(std::uint32_t size) noexcept { size_ = size; }

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  alignas(8) unsigned char storage_[capacity]{};
  std::uint32_t size_ = 0;
};

}  // namespace tulipa
