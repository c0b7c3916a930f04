// A raw socket HTTP peer for the server tests: sends exactly the bytes a test gives (malformed ones included) and
// collects what comes back, with the loop (add_reader) telling it when bytes arrive, so nothing sleeps.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "support/net_util.hpp"
#include "tulipa/http/framing.hpp"
#include "tulipa/http/parser.hpp"
#include "tulipa/loop.hpp"

namespace tulipa::test {

struct RawResponse {
  int status = 0;
  std::string head{};  // the whole head, for finding fields
  std::string body{};
  bool has(std::string_view field_line) const { return head.find(field_line) != std::string::npos; }
};

class RawClient {
 public:
  RawClient(EventLoop& loop, std::uint16_t port) : loop_(loop) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::fcntl(fd_, F_SETFL, O_NONBLOCK);
    loop_.add_reader(fd_, [this] { on_readable(); });
  }
  RawClient(const RawClient&) = delete;
  ~RawClient() {
    loop_.remove_reader(fd_);
    ::close(fd_);
  }

  void send(std::string_view s) {
    while (!s.empty()) {
      const ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << "send failed";
      s.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Runs the loop until `n` whole responses arrived (or the server closed); returns those that did, parsed with
  // Content-Length framing (responses to HEAD requests: pass head_only for them, by index).
  std::vector<RawResponse> responses(std::size_t n, std::vector<bool> head_only = {}) {
    std::vector<RawResponse> out;
    run_until(loop_, [&] {
      out = parse(head_only);
      return out.size() >= n || eof_;
    });
    return out;
  }
  RawResponse response() {
    auto r = responses(1);
    return r.empty() ? RawResponse{} : r.front();
  }
  // Runs the loop until the server closed the connection.
  bool wait_closed() {
    return run_until(loop_, [&] { return eof_; });
  }
  bool closed() const { return eof_; }
  const std::string& received() const { return got_; }
  int fd() const { return fd_; }
  void shut_write() { ::shutdown(fd_, SHUT_WR); }

 private:
  void on_readable() {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        got_.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        eof_ = true;
        loop_.remove_reader(fd_);
      }
      return;
    }
  }

  std::vector<RawResponse> parse(const std::vector<bool>& head_only) const {
    std::vector<RawResponse> out;
    std::string_view rest = got_;
    while (!rest.empty()) {
      http::ResponseHead head;
      http::Header headers[64];
      const http::ParseResult r = http::parse_response(rest, head, headers);
      if (!r.complete()) break;
      RawResponse resp;
      resp.status = head.status;
      resp.head.assign(rest.substr(0, r.consumed));
      std::size_t length = 0;
      for (std::size_t i = 0; i < head.header_count; ++i)
        if (http::iequals(headers[i].name, "content-length")) length = std::stoul(std::string(headers[i].value));
      const bool no_body = (out.size() < head_only.size() && head_only[out.size()]) || head.status < 200;
      if (no_body) length = 0;
      if (rest.size() - r.consumed < length) break;
      resp.body.assign(rest.substr(r.consumed, length));
      rest.remove_prefix(r.consumed + length);
      out.push_back(std::move(resp));
    }
    return out;
  }

  EventLoop& loop_;
  int fd_ = -1;
  std::string got_;
  bool eof_ = false;
};

}  // namespace tulipa::test
