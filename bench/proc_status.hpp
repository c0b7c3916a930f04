// What /proc says about a process, for the benchmarks that report memory (memory_return, soak).
#pragma once

#include <cstdio>
#include <string>

namespace bench {

// VmRSS of `pid` ("self" for this process) in KiB, or -1 when /proc cannot tell.
inline long rss_kib(const std::string& pid = "self") {
  std::FILE* f = std::fopen(("/proc/" + pid + "/status").c_str(), "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  std::fclose(f);
  return kib;
}

}  // namespace bench
