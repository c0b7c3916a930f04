// getaddrinfo / getnameinfo on the DNS pool (see tulipa/dns.hpp for why the pool is separate).
#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "tulipa/dns.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/to_thread.hpp"

namespace tulipa {

namespace {

GaiError gai_error(int rc, const std::string& what) {
  std::string text = what + ": " + ::gai_strerror(rc);
  if (rc == EAI_SYSTEM) text += std::string(" (") + std::strerror(errno) + ")";
  return GaiError(rc, text);
}

}  // namespace

ThreadPoolExecutor& dns_executor() {
  // Never destroyed: a worker may be blocked in a lookup when static destructors run at exit.
  static auto* pool = new ThreadPoolExecutor(ExecutorOptions{4, "tulipa-dns", nullptr});
  return *pool;
}

std::vector<AddrInfo> getaddrinfo_blocking(const std::string& host, const std::string& port, AddrInfoHints hints) {
  addrinfo h{};
  h.ai_family = hints.family;
  h.ai_socktype = hints.type;
  h.ai_protocol = hints.protocol;
  h.ai_flags = hints.flags;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.empty() ? nullptr : port.c_str(), &h, &res);
  if (rc != 0) throw gai_error(rc, "getaddrinfo(\"" + host + "\", \"" + port + "\")");
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(res, &::freeaddrinfo);
  std::vector<AddrInfo> out;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    AddrInfo entry;
    entry.family = ai->ai_family;
    entry.type = ai->ai_socktype;
    entry.protocol = ai->ai_protocol;
    if (ai->ai_canonname) entry.canonname = ai->ai_canonname;
    entry.address = SocketAddress::from_raw(ai->ai_addr, ai->ai_addrlen);
    out.push_back(std::move(entry));
  }
  return out;
}

NameInfo getnameinfo_blocking(const SocketAddress& address, int flags) {
  if (address.empty()) throw std::invalid_argument("getnameinfo: empty address");
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  int rc = ::getnameinfo(static_cast<const sockaddr*>(address.data()), address.size(), host, sizeof host, service,
                         sizeof service, flags);
  if (rc != 0) throw gai_error(rc, "getnameinfo(" + address.to_string() + ")");
  return NameInfo{host, service};
}

Future<std::vector<AddrInfo>> getaddrinfo(EventLoop& loop, std::string host, std::string port, AddrInfoHints hints) {
  return run_in_executor(loop, &dns_executor(), &getaddrinfo_blocking, std::move(host), std::move(port), hints);
}

Future<std::vector<AddrInfo>> getaddrinfo(EventLoop& loop, std::string host, std::uint16_t port, AddrInfoHints hints) {
  return getaddrinfo(loop, std::move(host), std::to_string(port), hints);
}

Future<NameInfo> getnameinfo(EventLoop& loop, SocketAddress address, int flags) {
  return run_in_executor(loop, &dns_executor(), &getnameinfo_blocking, address, flags);
}

Future<std::vector<AddrInfo>> getaddrinfo(std::string host, std::string port, AddrInfoHints hints) {
  return getaddrinfo(get_running_loop(), std::move(host), std::move(port), hints);
}

Future<std::vector<AddrInfo>> getaddrinfo(std::string host, std::uint16_t port, AddrInfoHints hints) {
  return getaddrinfo(get_running_loop(), std::move(host), std::to_string(port), hints);
}

Future<NameInfo> getnameinfo(SocketAddress address, int flags) {
  return getnameinfo(get_running_loop(), address, flags);
}

}  // namespace tulipa
