// Helpers for tests of pending connections and host names (as tests/net_resolve_threads_test.cpp does them):
//   FullListener       a 127.0.0.1 listener whose accept queue is full, so a connect() to it stays in progress
//   open_sockets & co  the process's sockets by inode, to see that a cancelled connect closed its socket
//   BusyDnsPool        occupies every DNS worker, so that a lookup waits in the pool's queue until open()
//   invalid_name_fails_fast  whether the resolver answers EAI_NONAME for name.invalid (RFC 6761), else tests skip
// No external network: names come from the hosts file ("localhost") or are under .invalid.
#pragma once

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "tulipa/dns.hpp"
#include "tulipa/socket_address.hpp"

namespace tulipa::test {

// Linux drops the SYN while the accept queue is full and the client retries a second later, so a connection to
// this listener is reliably pending for as long as a test needs.
struct FullListener {
  int listener = -1;
  int filler = -1;
  std::uint16_t port = 0;
  FullListener() {
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SocketAddress a = SocketAddress::parse("127.0.0.1", 0);
    EXPECT_EQ(::bind(listener, static_cast<const sockaddr*>(a.data()), a.size()), 0);
    EXPECT_EQ(::listen(listener, 0), 0);  // room for one connection
    socklen_t len = SocketAddress::capacity;
    ::getsockname(listener, static_cast<sockaddr*>(a.data()), &len);
    a.set_size(len);
    port = a.port();
    filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    // Blocking: returns once the handshake is done, so the queue is full from here on.
    EXPECT_EQ(::connect(filler, static_cast<const sockaddr*>(a.data()), a.size()), 0);
  }
  FullListener(const FullListener&) = delete;
  FullListener& operator=(const FullListener&) = delete;
  ~FullListener() {
    ::close(filler);
    ::close(listener);
  }
};

// The sockets this process has open, as inode names ("socket:[123]").
inline std::vector<std::string> open_sockets() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    std::error_code ec2;
    auto target = std::filesystem::read_symlink(entry.path(), ec2);
    if (!ec2 && target.string().rfind("socket:", 0) == 0) out.push_back(target.string());
  }
  return out;
}

inline bool is_open(const std::string& socket) {
  for (const auto& s : open_sockets()) {
    if (s == socket) return true;
  }
  return false;
}

// The sockets that appeared since `before`.
inline std::vector<std::string> new_sockets(const std::vector<std::string>& before) {
  std::vector<std::string> out;
  for (const auto& s : open_sockets()) {
    bool old = false;
    for (const auto& b : before) old = old || b == s;
    if (!old) out.push_back(s);
  }
  return out;
}

// The one socket that appeared since `before` ("" if none or several).
inline std::string new_socket(const std::vector<std::string>& before) {
  auto fresh = new_sockets(before);
  return fresh.size() == 1 ? fresh[0] : std::string();
}

// Occupies every DNS worker until release() (or destruction).
class BusyDnsPool {
 public:
  BusyDnsPool() : gate_(std::make_shared<Gate>()) {
    auto& dns = dns_executor();
    auto busy = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(dns.max_workers()));
    for (std::size_t i = 0; i < dns.max_workers(); ++i) {
      dns.submit([gate = gate_, busy] {
        busy->count_down();
        gate->wait();
      });
    }
    busy->wait();
  }
  BusyDnsPool(const BusyDnsPool&) = delete;
  BusyDnsPool& operator=(const BusyDnsPool&) = delete;
  ~BusyDnsPool() { release(); }
  void release() { gate_->open(); }

 private:
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool is_open = false;
    void wait() {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return is_open; });
    }
    void open() {
      {
        std::lock_guard lock(mu);
        is_open = true;
      }
      cv.notify_all();
    }
  };
  std::shared_ptr<Gate> gate_;
};

inline bool invalid_name_fails_fast() {
  AddrInfoHints hints;
  hints.type = SOCK_STREAM;
  try {
    (void)getaddrinfo_blocking("name.invalid", "80", hints);
  } catch (const GaiError& e) {
    return e.code() == EAI_NONAME;
  }
  return false;
}

}  // namespace tulipa::test
