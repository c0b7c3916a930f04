// getaddrinfo() and getnameinfo(): asyncio's loop.getaddrinfo / loop.getnameinfo, run on a DNS thread pool of
// their own.
//
// Why a separate pool: the C library's resolver blocks, sometimes for seconds (a dead name server, a 5-second
// timeout per attempt). On a shared pool a burst of slow lookups takes every worker and starves the user's
// to_thread work (libuv's long-standing complaint: its fs and DNS requests share 4 threads). Here lookups run on
// dns_executor(): at most 4 threads named "tulipa-dns-<n>", process-wide, started on first use, never shut down
// (a worker stuck in a lookup at exit just dies with the process). A cancelled lookup still finishes on its
// worker; its result is dropped (see to_thread.hpp).
//
// The numbers in AddrInfoHints / AddrInfo are the C library's (AF_INET, SOCK_STREAM, IPPROTO_TCP, AI_PASSIVE,
// NI_NUMERICHOST...): include <netdb.h> / <sys/socket.h> in the code that uses them (a public header includes no OS
// header).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tulipa/executor.hpp"
#include "tulipa/future.hpp"
#include "tulipa/socket_address.hpp"

namespace tulipa {

class EventLoop;

struct AddrInfoHints {
  int family = 0;  // AF_UNSPEC
  int type = 0;    // SOCK_STREAM, SOCK_DGRAM, or 0 for any
  int protocol = 0;
  int flags = 0;  // AI_PASSIVE, AI_NUMERICHOST, AI_CANONNAME...
};

// One entry of the answer, like Python's (family, type, proto, canonname, sockaddr).
struct AddrInfo {
  int family = 0;
  int type = 0;
  int protocol = 0;
  std::string canonname{};  // only on the first entry, and only with AI_CANONNAME
  SocketAddress address{};
};

struct NameInfo {
  std::string host{};
  std::string service{};
};

// A failed lookup (Python's socket.gaierror). code() is the EAI_* value; for EAI_SYSTEM, what() includes errno's
// text. The message names the host asked for.
class GaiError : public std::runtime_error {
 public:
  GaiError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

// The DNS pool (see top).
ThreadPoolExecutor& dns_executor();

// The blocking calls, as run on the DNS pool (also usable from any thread that may block). An empty host means
// none (with AI_PASSIVE: every interface; without: loopback), an empty port means none. Throw GaiError.
std::vector<AddrInfo> getaddrinfo_blocking(const std::string& host, const std::string& port, AddrInfoHints hints);
NameInfo getnameinfo_blocking(const SocketAddress& address, int flags);

// On `loop` (loop thread): the lookup runs on dns_executor(); the Future is completed on the loop, with the result or
// the GaiError. Cancelling it drops the answer when it arrives.
Future<std::vector<AddrInfo>> getaddrinfo(EventLoop& loop, std::string host, std::string port,
                                          AddrInfoHints hints = {});
Future<std::vector<AddrInfo>> getaddrinfo(EventLoop& loop, std::string host, std::uint16_t port,
                                          AddrInfoHints hints = {});
Future<NameInfo> getnameinfo(EventLoop& loop, SocketAddress address, int flags = 0);
// The same on the running loop.
Future<std::vector<AddrInfo>> getaddrinfo(std::string host, std::string port, AddrInfoHints hints = {});
Future<std::vector<AddrInfo>> getaddrinfo(std::string host, std::uint16_t port, AddrInfoHints hints = {});
Future<NameInfo> getnameinfo(SocketAddress address, int flags = 0);

}  // namespace tulipa
