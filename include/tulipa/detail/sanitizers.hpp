// Which sanitizers this translation unit is compiled with, in one spelling for both compilers: TULIPA_ASAN,
// TULIPA_TSAN and TULIPA_UBSAN are each 1 or 0 (test them with #if).
//
// Why: g++ defines __SANITIZE_ADDRESS__ and __SANITIZE_THREAD__; clang 19 defines neither and answers
// __has_feature(address_sanitizer) / __has_feature(thread_sanitizer) instead (g++ 12 has no __has_feature). A
// check that knows one spelling only is silently false under the other compiler (the ASan+UBSan tree is built
// with clang, the TSan tree with g++). UndefinedBehaviorSanitizer: clang answers
// __has_feature(undefined_behavior_sanitizer); g++ has no macro for it, so tulipa's build defines TULIPA_UBSAN=1
// on the command line whenever -fsanitize includes undefined (CMakeLists.txt).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define TULIPA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TULIPA_ASAN 1
#endif
#endif
#ifndef TULIPA_ASAN
#define TULIPA_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define TULIPA_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TULIPA_TSAN 1
#endif
#endif
#ifndef TULIPA_TSAN
#define TULIPA_TSAN 0
#endif

#ifndef TULIPA_UBSAN
#if defined(__has_feature)
#if __has_feature(undefined_behavior_sanitizer)
#define TULIPA_UBSAN 1
#endif
#endif
#endif
#ifndef TULIPA_UBSAN
#define TULIPA_UBSAN 0
#endif
