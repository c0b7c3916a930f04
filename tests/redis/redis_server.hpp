// Redis servers for the tests: the shared one the redis_server CTest fixture started (fixture_port()), and private
// ones a test may kill, stop (SIGSTOP) or restart (PrivateRedis), each on a free loopback port with a temp dir and
// no persistence.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace tulipa::test {

// The fixture's server (REDIS_PORT_FILE, written by redis_fixture.sh).
inline std::uint16_t fixture_port() {
  std::ifstream f(REDIS_PORT_FILE);
  int port = 0;
  if (!(f >> port) || port <= 0) throw std::runtime_error("no redis-server fixture: " REDIS_PORT_FILE);
  return static_cast<std::uint16_t>(port);
}

inline std::uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class PrivateRedis {
 public:
  // `extra`: more redis-server arguments. `tls_port`: the server listens with TLS there (port() is then it).
  explicit PrivateRedis(std::vector<std::string> extra = {}, bool tls = false) : extra_(std::move(extra)), tls_(tls) {
    char tmpl[] = "/tmp/tulipa-redis-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    port_ = free_loopback_port();
    start();
  }
  ~PrivateRedis() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::uint16_t port() const noexcept { return port_; }

  void start() {
    std::vector<std::string> args{"redis-server",
                                  "--bind",
                                  "127.0.0.1",
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--dir",
                                  dir_,
                                  "--logfile",
                                  dir_ + "/log",
                                  "--enable-debug-command",
                                  "yes"};
    if (tls_)
      args.insert(args.end(), {"--port", "0", "--tls-port", std::to_string(port_)});
    else
      args.insert(args.end(), {"--port", std::to_string(port_)});
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0)
      throw std::runtime_error("cannot spawn redis-server");
    // Ready once it accepts a connection (bounded: 10 s).
    for (int i = 0; i < 1000; ++i) {
      if (accepts()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("redis-server did not start");
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

 private:
  bool accepts() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port_);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }
  std::vector<std::string> extra_;
  bool tls_;
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace tulipa::test
