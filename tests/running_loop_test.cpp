// The running-loop overloads, what coroutine code calls without passing a loop: start_server, start_server_async,
// start_unix_server, open_connection, open_unix_connection, create_server, create_server_async, create_unix_server,
// create_connection, create_unix_connection, subprocess_exec, subprocess_shell, create_subprocess_exec (one argument
// at a time, with and without options), run_in_executor and to_thread. Each is used inside tulipa::run on loopback,
// a Unix socket in a temp dir or a real child, and each throws std::runtime_error when no loop runs on the thread.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/stream_echo.hpp"
#include "tulipa/future.hpp"
#include "tulipa/net.hpp"
#include "tulipa/process.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/subprocess.hpp"
#include "tulipa/task.hpp"
#include "tulipa/timeout.hpp"
#include "tulipa/to_thread.hpp"

using namespace std::chrono_literals;
using tulipa::Bytes;
using tulipa::Coro;
using tulipa::Future;
using tulipa::Process;
using tulipa::Server;
using tulipa::Stdio;
using tulipa::SubprocessOptions;
using tulipa::Transport;

namespace {

// A fresh directory for Unix sockets, removed with its contents at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tulipa-running-loop-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// One line there and back through a streams connection.
Coro<std::string> ask(tulipa::StreamPair pair, std::string line) {
  auto& [reader, writer] = pair;
  writer.write(line + "\n");
  Bytes reply = co_await reader.readline();
  writer.close();
  co_await writer.wait_closed();
  co_return reply.str();
}

// The protocol side: the server echoes; the client sends a line and resolves `reply` with what comes back.
struct EchoProtocol final : tulipa::Protocol {
  Transport* t = nullptr;
  void connection_made(Transport& transport) override { t = &transport; }
  void data_received(std::span<const std::byte> data) override { t->write(data); }
};
struct AskProtocol final : tulipa::Protocol {
  explicit AskProtocol(Future<std::string> r) : reply(std::move(r)) {}
  Future<std::string> reply;
  std::string got;
  void connection_made(Transport& transport) override { transport.write(std::string_view("ping\n")); }
  void data_received(std::span<const std::byte> data) override {
    got.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (got.ends_with('\n') && !reply.done()) reply.set_result(got);
  }
  void connection_lost(std::exception_ptr exc) override {
    if (!reply.done()) reply.set_exception(exc ? exc : std::make_exception_ptr(std::runtime_error("closed early")));
  }
};

Coro<std::string> ping(Future<Transport*> connecting, Future<std::string> reply) {
  Transport* t = co_await connecting;
  std::string got = co_await tulipa::wait_for(reply, 5s);
  t->close();
  co_return got;
}

tulipa::ProtocolFactory echo_factory() {
  return [] { return std::unique_ptr<tulipa::StreamProtocol>(new EchoProtocol); };
}
tulipa::ProtocolFactory ask_factory(Future<std::string> reply) {
  return [reply] { return std::unique_ptr<tulipa::StreamProtocol>(new AskProtocol(reply)); };
}

TEST(RunningLoop, StreamServersAndConnections) {
  TempDir dir;
  const std::string path = (dir.path / "s").string();
  auto main = [&]() -> Coro<std::vector<std::string>> {
    std::vector<std::string> replies;
    Server tcp = tulipa::start_server(tulipa::test::echo_lines, "127.0.0.1", 0);
    tulipa::StreamPair a = co_await tulipa::open_connection("127.0.0.1", tcp.sockets().at(0).port());
    replies.push_back(co_await ask(std::move(a), "tcp"));

    Server async = co_await tulipa::start_server_async(tulipa::test::echo_lines, "localhost", 0);
    tulipa::StreamPair b = co_await tulipa::open_connection("localhost", async.sockets().at(0).port());
    replies.push_back(co_await ask(std::move(b), "async"));

    Server unix_server = tulipa::start_unix_server(tulipa::test::echo_lines, path);
    tulipa::StreamPair c = co_await tulipa::open_unix_connection(path);
    replies.push_back(co_await ask(std::move(c), "unix"));

    for (Server* s : {&tcp, &async, &unix_server}) {
      s->close();
      co_await s->wait_closed();
    }
    co_return replies;
  };
  EXPECT_EQ(tulipa::run(main()), (std::vector<std::string>{"tcp\n", "async\n", "unix\n"}));
}

TEST(RunningLoop, ProtocolServersAndConnections) {
  TempDir dir;
  const std::string path = (dir.path / "p").string();
  auto main = [&]() -> Coro<std::vector<std::string>> {
    std::vector<std::string> replies;
    Server tcp = tulipa::create_server(echo_factory(), "127.0.0.1", 0);
    Future<std::string> r1;
    replies.push_back(
        co_await ping(tulipa::create_connection(ask_factory(r1), "127.0.0.1", tcp.sockets().at(0).port()), r1));

    Server async = co_await tulipa::create_server_async(echo_factory(), "localhost", 0);
    Future<std::string> r2;
    replies.push_back(
        co_await ping(tulipa::create_connection(ask_factory(r2), "localhost", async.sockets().at(0).port()), r2));

    Server unix_server = tulipa::create_unix_server(echo_factory(), path);
    Future<std::string> r3;
    replies.push_back(co_await ping(tulipa::create_unix_connection(ask_factory(r3), path), r3));

    for (Server* s : {&tcp, &async, &unix_server}) {
      s->close();
      co_await s->wait_closed();
    }
    co_return replies;
  };
  EXPECT_EQ(tulipa::run(main()), (std::vector<std::string>(3, "ping\n")));
}

// Records a child's output and resolves `done` with it and the return code once connection_lost ran (the protocol
// is destroyed right after, so nothing is read from it later).
struct ChildProtocol final : tulipa::SubprocessProtocol {
  explicit ChildProtocol(Future<std::string> d) : done(std::move(d)) {}
  Future<std::string> done;
  tulipa::SubprocessTransport* t = nullptr;
  std::string out;
  void connection_made(tulipa::SubprocessTransport& transport) override { t = &transport; }
  void pipe_data_received(int fd, std::span<const std::byte> data) override {
    if (fd == 1) out.append(reinterpret_cast<const char*>(data.data()), data.size());
  }
  void connection_lost(std::exception_ptr) override {
    done.set_result(out + std::to_string(t->get_returncode().value_or(-1000)));
  }
};

TEST(RunningLoop, LowLevelSubprocesses) {
  auto main = []() -> Coro<std::string> {
    const auto piped = SubprocessOptions().with_stdout(Stdio::pipe());
    Future<std::string> exec_done;
    std::vector<std::string> argv{"echo", "exec"};
    tulipa::subprocess_exec(std::make_unique<ChildProtocol>(exec_done), std::move(argv), piped);
    std::string got = co_await tulipa::wait_for(exec_done, 30s);
    Future<std::string> shell_done;
    tulipa::subprocess_shell(std::make_unique<ChildProtocol>(shell_done), "echo shell; exit 3", piped);
    got += co_await tulipa::wait_for(shell_done, 30s);
    co_return got;
  };
  EXPECT_EQ(tulipa::run(main()), "exec\n0shell\n3");
}

TEST(RunningLoop, CreateSubprocessExecTakesTheArgumentsOneByOne) {
  auto main = []() -> Coro<std::string> {
    std::string got;
    // Default options: the child inherits our stdout, so only the return code is checked.
    Process quiet = co_await tulipa::create_subprocess_exec("sh", "-c", "exit 7");
    got += std::to_string(co_await quiet.wait()) + ";";
    // Options first; a std::string and a std::string_view are arguments too.
    const std::string word = "two words";
    const std::string_view other = "3";
    const auto options = SubprocessOptions().with_stdout(Stdio::pipe()).with_stderr(Stdio::to_stdout());
    Process p = co_await tulipa::create_subprocess_exec(options, "printf", "%s|%s|%s", "one", word, other);
    auto [out, err] = co_await p.communicate();
    got += out.str() + ";" + std::to_string(p.returncode().value_or(-1000));
    co_return got;
  };
  EXPECT_EQ(tulipa::run(main()), "7;one|two words|3;0");
}

TEST(RunningLoop, SubprocessOptionsSettersChangeOneFieldEach) {
  static const std::vector<std::string> env{"A=1"};
  const SubprocessOptions defaults;
  const SubprocessOptions o = SubprocessOptions()
                                  .with_stdin(Stdio::pipe())
                                  .with_stdout(Stdio::devnull())
                                  .with_stderr(Stdio::to_stdout())
                                  .with_env(env)
                                  .with_cwd("/tmp")
                                  .with_start_new_session()
                                  .with_process_group(0)
                                  .with_shell_process_group(false)
                                  .with_close_fds(false)
                                  .with_limit(4096);
  EXPECT_EQ(o.std_in.kind(), Stdio::Kind::pipe);
  EXPECT_EQ(o.std_out.kind(), Stdio::Kind::devnull);
  EXPECT_EQ(o.std_err.kind(), Stdio::Kind::to_stdout);
  ASSERT_TRUE(o.env.has_value());
  EXPECT_EQ(o.env->data(), env.data());
  EXPECT_EQ(o.cwd, "/tmp");
  EXPECT_TRUE(o.start_new_session);
  EXPECT_EQ(o.process_group, 0);
  EXPECT_FALSE(o.shell_process_group);
  EXPECT_FALSE(o.close_fds);
  EXPECT_EQ(o.limit, 4096u);
  // Each setter returns a copy: the object it was called on keeps its values.
  const SubprocessOptions base;
  (void)base.with_limit(1).with_close_fds(false);
  EXPECT_EQ(base.limit, defaults.limit);
  EXPECT_EQ(base.close_fds, defaults.close_fds);
  EXPECT_EQ(base.std_in.kind(), defaults.std_in.kind());
}

TEST(RunningLoop, WorkOnThreads) {
  auto main = []() -> Coro<int> {
    const auto caller = std::this_thread::get_id();
    const int a =
        co_await tulipa::to_thread([caller](int x) { return std::this_thread::get_id() != caller ? x : -1; }, 20);
    const int b = co_await tulipa::run_in_executor(nullptr, [](int x, int y) { return x + y; }, 1, 1);
    co_return a + b;
  };
  EXPECT_EQ(tulipa::run(main()), 22);
}

TEST(RunningLoop, EachThrowsWithoutARunningLoop) {
  const auto piped = SubprocessOptions().with_stdout(Stdio::pipe());
  EXPECT_THROW((void)tulipa::start_server(tulipa::test::echo_lines, "127.0.0.1", 0), std::runtime_error);
  EXPECT_THROW((void)tulipa::start_server_async(tulipa::test::echo_lines, "127.0.0.1", 0), std::runtime_error);
  EXPECT_THROW((void)tulipa::start_unix_server(tulipa::test::echo_lines, "/nonexistent/s"), std::runtime_error);
  EXPECT_THROW((void)tulipa::create_server(echo_factory(), "127.0.0.1", 0), std::runtime_error);
  EXPECT_THROW((void)tulipa::create_server_async(echo_factory(), "127.0.0.1", 0), std::runtime_error);
  EXPECT_THROW((void)tulipa::create_unix_server(echo_factory(), "/nonexistent/p"), std::runtime_error);
  EXPECT_THROW((void)tulipa::create_connection(echo_factory(), "127.0.0.1", 1), std::runtime_error);
  EXPECT_THROW((void)tulipa::create_unix_connection(echo_factory(), "/nonexistent/p"), std::runtime_error);
  EXPECT_THROW((void)tulipa::subprocess_exec(std::make_unique<ChildProtocol>(Future<std::string>(nullptr)),
                                             std::vector<std::string>{"true"}, piped),
               std::runtime_error);
  EXPECT_THROW((void)tulipa::subprocess_shell(std::make_unique<ChildProtocol>(Future<std::string>(nullptr)), "true"),
               std::runtime_error);
  EXPECT_THROW((void)tulipa::to_thread([] { return 1; }), std::runtime_error);
  EXPECT_THROW((void)tulipa::run_in_executor(nullptr, [] { return 1; }), std::runtime_error);
}

}  // namespace
