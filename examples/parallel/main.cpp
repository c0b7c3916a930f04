// tulipa_parallel: runs shell commands at the same time and prints their output lines as they come, each line
// prefixed with its command's number, then every command's exit status. Exit status: 0 if all commands succeeded.
//
//   tulipa_parallel 'for i in 1 2 3; do echo $i; sleep 0.1; done' 'ls /' 'exit 3'
//
// Shows create_subprocess_shell, reading a child's stdout and stderr line by line as a stream while it runs, and
// waiting for several children at once.
#include <cstdio>
#include <string>
#include <vector>

#include "tulipa/process.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/task.hpp"

namespace {

// Prints each line of `stream` with the prefix until EOF.
tulipa::Coro<void> copy_lines(tulipa::StreamReader stream, std::string prefix, std::FILE* to) {
  for (;;) {
    tulipa::Bytes line = co_await stream.readline();
    if (line.empty()) co_return;
    std::string_view text = line.view();  // the last line may lack its '\n'
    std::fprintf(to, "%s%.*s%s", prefix.c_str(), int(text.size()), text.data(), text.back() == '\n' ? "" : "\n");
    std::fflush(to);
  }
}

tulipa::Coro<int> run_one(std::size_t n, std::string command) {
  const auto options = tulipa::SubprocessOptions()
                           .with_stdin(tulipa::Stdio::devnull())
                           .with_stdout(tulipa::Stdio::pipe())
                           .with_stderr(tulipa::Stdio::pipe());
  tulipa::Process p = co_await tulipa::create_subprocess_shell(command, options);
  std::string prefix = "[" + std::to_string(n) + "] ";
  // stdout and stderr are read at the same time: a child blocked on a full stderr pipe would never end stdout.
  auto err = tulipa::create_task(copy_lines(*p.std_err(), prefix, stderr));
  co_await copy_lines(*p.std_out(), prefix, stdout);
  co_await err;
  co_return co_await p.wait();
}

tulipa::Coro<int> main_coro(std::vector<std::string> commands) {
  std::vector<tulipa::Task<int>> tasks;
  for (std::size_t i = 0; i < commands.size(); ++i) tasks.push_back(tulipa::create_task(run_one(i + 1, commands[i])));
  int failures = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    int status = co_await tasks[i];
    failures += status != 0;
    std::printf("[%zu] exit status %d: %s\n", i + 1, status, commands[i].c_str());
  }
  co_return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s COMMAND...\n", argv[0]);
    return 2;
  }
  try {
    return tulipa::run(main_coro(std::vector<std::string>(argv + 1, argv + argc)));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 2;
  }
}
