// Which backend a loop runs on: LoopOptions::backend, TULIPA_LOOP, and the fall-back to epoll with one log line
// when the kernel refuses io_uring (here refused for real, by a seccomp filter in a child process).
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "tulipa/loop.hpp"

namespace tulipa {
namespace {

TEST(LoopBackend, OptionChoosesTheBackend) {
  for (auto [backend, name] : {std::pair{LoopBackend::epoll, "epoll"}, std::pair{LoopBackend::poll, "poll"}}) {
    LoopOptions options;
    options.backend = backend;
    EventLoop loop(std::move(options));
    EXPECT_EQ(loop.selector().name(), name);
  }
  LoopOptions options;
  options.backend = LoopBackend::uring;
  EventLoop loop(std::move(options));
  // io_uring where the kernel allows it (this machine's does), else the fall-back.
  EXPECT_EQ(loop.selector().name(), uring_available() ? "uring" : "epoll");
  int ran = 0;
  loop.call_soon([&] {
    ++ran;
    loop.stop();
  });
  loop.run_forever();
  EXPECT_EQ(ran, 1);
}

TEST(LoopBackend, EnvironmentNamesTheBackendOfEveryLoop) {
  // The suites run again with TULIPA_LOOP=uring and =poll (tests/CMakeLists.txt): this is what makes them run on
  // io_uring and poll.
  const char* env = std::getenv("TULIPA_LOOP");
  EventLoop loop;
  if (env != nullptr && std::string(env) == "uring" && uring_available()) {
    EXPECT_EQ(loop.selector().name(), "uring");
  } else if (env != nullptr && std::string(env) == "poll") {
    EXPECT_EQ(loop.selector().name(), "poll");
  } else if (env == nullptr || std::string(env) == "epoll") {
    EXPECT_EQ(loop.selector().name(), "epoll");
  }
}

// Installs a seccomp filter that makes io_uring_setup fail with EPERM, as container runtimes' default profiles do.
bool refuse_io_uring() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

TEST(LoopBackend, RefusedIoUringFallsBackToEpollWithOneLogLine) {
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::dup2(out[1], STDERR_FILENO);
    ::close(out[0]);
    if (!refuse_io_uring()) ::_exit(3);
    int status = 0;
    for (int i = 0; i < 2; ++i) {  // two loops, one line
      LoopOptions options;
      options.backend = LoopBackend::uring;
      EventLoop loop(std::move(options));
      if (loop.selector().name() != "epoll") status = 4;
      loop.call_soon([&] { loop.stop(); });
      loop.run_forever();
    }
    ::_exit(status);
  }
  ::close(out[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) err.append(buf, std::size_t(n));
  ::close(out[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << err;
  if (!uring_available()) return;  // built without io_uring: the line names ENOSYS, not EPERM
  EXPECT_NE(err.find("io_uring refused"), std::string::npos) << err;
  EXPECT_NE(err.find("Operation not permitted"), std::string::npos) << err;
  EXPECT_EQ(err.find("io_uring refused"), err.rfind("io_uring refused")) << "one line, not one per loop: " << err;
}

}  // namespace
}  // namespace tulipa
