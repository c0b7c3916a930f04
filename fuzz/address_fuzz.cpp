// Address and host parsing: SocketAddress::parse (numeric IPv4/IPv6 with a zone), SocketAddress::unix_path, and
// the numeric-host step of create_server / create_connection (detail::numeric_addresses: "[::1]", "" for every
// interface). Accepted input must print back to an address that parses to the same thing; rejected input must
// be std::invalid_argument, nothing else.
//
// Input: [port high][port low][flags] then the text. flags bit 0: passive (a server's host).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "net/resolve.hpp"
#include "tulipa/socket_address.hpp"

namespace {

using namespace tulipa;

void check_ip(const SocketAddress& a, std::string_view text, std::uint16_t port) {
  FUZZ_CHECK(a.family() == SocketAddress::Family::ipv4 || a.family() == SocketAddress::Family::ipv6);
  FUZZ_CHECK(a.port() == port);
  // What a numeric address accepts is printable text: no NUL hiding a suffix from inet_pton.
  FUZZ_CHECK(text.find('\0') == std::string_view::npos);
  const std::string host = a.host();
  FUZZ_CHECK(!host.empty());
  FUZZ_CHECK(SocketAddress::parse(host, port) == a);
  const std::string full = a.to_string();
  FUZZ_CHECK(full.size() > host.size() && full.ends_with(":" + std::to_string(port)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const auto port = static_cast<std::uint16_t>(data[0] << 8 | data[1]);
  const bool passive = data[2] & 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 3), size - 3);

  try {
    check_ip(SocketAddress::parse(text, port), text, port);
  } catch (const std::invalid_argument&) {
  }

  try {
    std::optional<std::vector<SocketAddress>> numeric = detail::numeric_addresses(text, port, passive);
    if (numeric) {
      FUZZ_CHECK(!numeric->empty());
      if (text.empty()) {
        FUZZ_CHECK(passive && numeric->size() == 2);
      } else {
        FUZZ_CHECK(numeric->size() == 1);
        check_ip(numeric->front(), text, port);
      }
    }
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(text.empty() && !passive);
  }

  try {
    const SocketAddress a = SocketAddress::unix_path(text);
    FUZZ_CHECK(!text.empty() && a.family() == SocketAddress::Family::unix_path && a.port() == 0);
    const std::string host = a.host();
    if (text[0] == '\0') {
      FUZZ_CHECK(host == "@" + std::string(text.substr(1)));  // an abstract name, exactly as long as given
    } else {
      // A file system path is NUL-terminated for the kernel: one with a NUL inside would name another file.
      FUZZ_CHECK(text.find('\0') == std::string_view::npos);
      FUZZ_CHECK(host == text && SocketAddress::unix_path(host) == a);
    }
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(text.empty() || text.size() >= 108 || (text[0] != '\0' && text.find('\0') != std::string_view::npos));
  }
  return 0;
}
