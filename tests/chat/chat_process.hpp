// The real tulipa-chat binary as a test drives it: start it (it says where to connect), kill it, read what a
// line client gets, and the SIGKILL test that chat_binary_test (SQLite) and chat_pg_store_test (PostgreSQL) run.
// TULIPA_CHAT_BIN is the binary's path (tests/chat/CMakeLists.txt defines it for the tests that include this).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace chat::test {

// Reads from `fd` (blocking, with poll) until `done(text)` or EOF or 30 s (a watchdog, not a timing assertion).
inline bool read_until(int fd, std::string& text, const std::function<bool(const std::string&)>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done(text)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[65536];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return done(text);
    text.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}
inline bool read_until(int fd, std::string& text, std::string_view s) {
  return read_until(fd, text, [s](const std::string& t) { return t.find(s) != std::string::npos; });
}
// Everything until EOF (or the watchdog).
inline void read_to_eof(int fd, std::string& text) {
  read_until(fd, text, [](const std::string&) { return false; });
}

// Starts `args` with its stdout and stderr on `out` and `err` (closed here); -1 when it cannot.
inline pid_t spawn(std::vector<std::string> args, int out, int err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out, 1);
  posix_spawn_file_actions_adddup2(&fa, err, 2);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out);
  if (err != out) ::close(err);
  return rc == 0 ? pid : -1;
}

struct Chat {
  pid_t pid = -1;
  int out = -1, err = -1;
  std::string stdout_text, stderr_text;
  std::uint16_t port = 0;

  // Starts the binary with `args` (and --tcp 127.0.0.1:0); waits until it says where to connect.
  bool start(std::vector<std::string> args) {
    args.insert(args.begin(), {TULIPA_CHAT_BIN, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"});
    int o[2], e[2];
    if (::pipe2(o, O_CLOEXEC) != 0 || ::pipe2(e, O_CLOEXEC) != 0) return false;
    pid = spawn(args, o[1], e[1]);
    out = o[0];
    err = e[0];
    if (pid < 0) return false;
    const std::string marker = "line clients on 127.0.0.1:";
    if (!read_until(out, stdout_text, [&](const std::string& t) {
          std::size_t at = t.find(marker);
          return at != std::string::npos && t.find(':', at + marker.size()) != std::string::npos;
        })) {
      return false;
    }
    port = static_cast<std::uint16_t>(std::stoi(stdout_text.substr(stdout_text.find(marker) + marker.size())));
    return true;
  }
  // Waits for the exit; returns the status as waitpid gives it. Collects stderr.
  int wait() {
    read_to_eof(err, stderr_text);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
  ~Chat() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (out >= 0) ::close(out);
    if (err >= 0) ::close(err);
  }
};

// Runs the binary to its end with `args` (no --tcp added); returns its exit code, with stderr.
inline int run_to_exit(std::vector<std::string> args, std::string& output) {
  args.insert(args.begin(), TULIPA_CHAT_BIN);
  int o[2];
  if (::pipe2(o, O_CLOEXEC) != 0) return -1;
  pid_t pid = spawn(args, o[1], o[1]);
  if (pid < 0) return -1;
  read_to_eof(o[0], output);
  ::close(o[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline int connect_client(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}
inline void send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "tulipa-chat-test-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// SIGKILL under load, then a restart on the same `store` (--store's value): every message any of 4 clients saw
// (at least 200 of their 2,000, the kill comes once the first client saw 200) is in the history the restarted
// server replays. Records the counts as the test's properties.
// `more`: further options (--loops 2: the clients spread over two loops, one writer).
inline void check_sigkill_under_load_loses_no_message(const std::string& store,
                                                      const std::vector<std::string>& more = {}) {
  std::vector<std::string> args = {"--store",      store,     "--history",     "100000",
                                   "--flood-rate", "1000000", "--flood-burst", "1000000"};
  args.insert(args.end(), more.begin(), more.end());
  constexpr int clients = 4, lines = 500;
  std::set<std::string> seen;
  {
    Chat chat;
    ASSERT_TRUE(chat.start(args));
    std::vector<int> fds;
    std::vector<std::string> got(clients);
    for (int c = 0; c < clients; ++c) {
      fds.push_back(connect_client(chat.port));
      send_all(fds[c], "/nick c" + std::to_string(c) + "\n");
      ASSERT_TRUE(read_until(fds[c], got[c], "* you are c" + std::to_string(c) + "\n"));
    }
    for (int c = 0; c < clients; ++c) {
      std::string burst;
      for (int i = 0; i < lines; ++i) burst += "m" + std::to_string(c) + "-" + std::to_string(i) + "\n";
      send_all(fds[c], burst);
    }
    // Kill it while the messages are being written and broadcast: once the first client saw 200 of them.
    ASSERT_TRUE(read_until(fds[0], got[0], [](const std::string& t) {
      std::size_t n = 0;
      for (std::size_t at = t.find("> m"); at != std::string::npos; at = t.find("> m", at + 1)) ++n;
      return n >= 200;
    }));
    ::kill(chat.pid, SIGKILL);
    chat.wait();
    for (int c = 0; c < clients; ++c) {
      read_to_eof(fds[c], got[c]);
      ::close(fds[c]);
      for (std::size_t at = got[c].find("> m"); at != std::string::npos; at = got[c].find("> m", at + 1)) {
        std::size_t end = got[c].find('\n', at);
        if (end != std::string::npos) seen.insert(got[c].substr(at + 2, end - at - 2));  // whole lines only
      }
    }
  }
  ASSERT_GE(seen.size(), 200u);
  Chat again;
  ASSERT_TRUE(again.start(args));
  int fd = connect_client(again.port);
  std::string history;
  ASSERT_TRUE(read_until(fd, history, "* in #lobby"));
  std::size_t head = history.find("* the last ");
  ASSERT_NE(head, std::string::npos);
  std::size_t count = std::stoul(history.substr(head + 11));
  ASSERT_TRUE(read_until(fd, history, [&](const std::string& t) {
    std::size_t n = 0;
    for (std::size_t at = t.find("> m"); at != std::string::npos; at = t.find("> m", at + 1)) ++n;
    return n >= count && t.ends_with("\n");
  }));
  ::close(fd);
  std::size_t missing = 0;
  for (const std::string& m : seen) {
    if (history.find("> " + m + "\n") == std::string::npos) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << seen.size() << " messages seen, " << count << " in the history";
  ::testing::Test::RecordProperty("seen", static_cast<int>(seen.size()));
  ::testing::Test::RecordProperty("stored", static_cast<int>(count));
}

}  // namespace chat::test
