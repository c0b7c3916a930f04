// FUZZ_CHECK(cond): an invariant of a fuzz target. A violation prints the condition and aborts, which libFuzzer
// reports as a crash and saves the input for (assert() would vanish from a build with NDEBUG).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
