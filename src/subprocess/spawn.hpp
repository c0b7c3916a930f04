// Spawning a child with posix_spawn: argv/env checks, the stdio plumbing and the error message. The child's end
// of each pipe is blocking (programs expect blocking stdio); ours is non-blocking and close-on-exec.
#pragma once

#include <string>
#include <vector>

#include "tulipa/subprocess.hpp"

namespace tulipa::detail {

struct SpawnedChild {
  int pid = -1;
  int fds[3] = {-1, -1, -1};  // our ends of the pipes for the child's 0, 1, 2 (-1 where not a pipe); owned by caller
};

// Throws std::invalid_argument for bad arguments and std::system_error (with the program's name) when the kernel
// refuses; nothing is left open or running on a throw.
SpawnedChild spawn_child(const std::vector<std::string>& argv, const SubprocessOptions& options);

// Sets SIGPIPE to SIG_IGN if it is at its default action (see subprocess.hpp). Once per process.
void ignore_sigpipe_once() noexcept;

}  // namespace tulipa::detail
