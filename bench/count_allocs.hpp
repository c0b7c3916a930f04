// --count-allocs for the benchmark servers (tulipa_echo, tulipa_ws, tulipa_http): replaces the global operator new with
// one that counts while `count_allocs::counting` is set. Include it in exactly one source file of a program (it defines
// the replacement operators). Counting is a branch on a plain bool: the servers run single-threaded, and without the
// flag this costs a predictable branch per allocation (of which the steady state has none).
// With `backtraces` set as well, each counted allocation writes its size and call stack to stderr (glibc's
// backtrace_symbols_fd, which allocates nothing; build with -rdynamic or read the addresses with addr2line): how an
// unexplained steady-state allocation is traced.
#pragma once

#include <execinfo.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

namespace count_allocs {
inline bool counting = false;
inline bool backtraces = false;
inline std::uint64_t allocations = 0;

// Turns the backtraces on (backtrace() allocates when first called: done here, outside the counting).
inline void enable_backtraces() {
  void* frames[4];
  backtrace(frames, 4);
  backtraces = true;
}

inline void print_backtrace(std::size_t n) {
  backtraces = false;  // no recursion, whatever the printing does
  char line[64];
  const int len = std::snprintf(line, sizeof line, "allocation of %zu bytes:\n", n);
  if (len > 0) (void)!::write(2, line, static_cast<std::size_t>(len));
  void* frames[32];
  backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
  backtraces = true;
}
}  // namespace count_allocs

void* operator new(std::size_t n) {
  if (count_allocs::counting) {
    ++count_allocs::allocations;
    if (count_allocs::backtraces) count_allocs::print_backtrace(n);
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// noinline: inlined, g++ 12 sees free() on what operator new returned and warns (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
