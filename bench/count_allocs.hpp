// --count-allocs for the benchmark servers (tulipa_echo, tulipa_ws): replaces the global operator new with one that
// counts while `count_allocs::counting` is set. Include it in exactly one source file of a program (it defines the
// replacement operators). Counting is a branch on a plain bool: the servers run single-threaded, and without the
// flag this costs a predictable branch per allocation (of which the steady state has none).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>

namespace count_allocs {
inline bool counting = false;
inline std::uint64_t allocations = 0;
}  // namespace count_allocs

void* operator new(std::size_t n) {
  if (count_allocs::counting) ++count_allocs::allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
