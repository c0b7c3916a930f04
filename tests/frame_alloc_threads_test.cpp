// The coroutine frame allocator: size classes, reuse, the cache limit, trimming, per-thread lists.
#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

#include "tulipa/coro.hpp"

namespace fa = tulipa::detail;

namespace {

class FrameAlloc : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fa::frame_cache_enabled) GTEST_SKIP() << "sanitizer build: frames are not recycled";
    fa::trim_frame_cache();
    fa::set_frame_cache_limit(std::size_t(32) << 20);
  }
};

TEST_F(FrameAlloc, FreedBlocksAreReusedWithinTheirSizeClass) {
  void* a = fa::frame_alloc(100);  // class 97..112
  fa::frame_free(a, 100);
  EXPECT_EQ(fa::frame_cache_bytes(), 112u);
  auto misses = fa::frame_allocations();
  void* b = fa::frame_alloc(112);  // same class: the same block
  EXPECT_EQ(a, b);
  EXPECT_EQ(fa::frame_allocations(), misses);
  EXPECT_EQ(fa::frame_cache_bytes(), 0u);
  void* c = fa::frame_alloc(113);  // next class: a new block
  EXPECT_NE(c, b);
  EXPECT_EQ(fa::frame_allocations(), misses + 1);
  EXPECT_EQ(fa::last_frame_size(), 113u);
  fa::frame_free(b, 112);
  fa::frame_free(c, 113);
}

TEST_F(FrameAlloc, OversizedFramesBypassTheCache) {
  void* big = fa::frame_alloc(10000);
  fa::frame_free(big, 10000);
  EXPECT_EQ(fa::frame_cache_bytes(), 0u);
}

TEST_F(FrameAlloc, TheLimitCapsWhatIsKept) {
  fa::set_frame_cache_limit(256);
  void* blocks[4];
  for (auto& b : blocks) b = fa::frame_alloc(64);
  for (auto& b : blocks) fa::frame_free(b, 64);
  EXPECT_EQ(fa::frame_cache_bytes(), 256u);  // four 64-byte blocks fit exactly
  void* more = fa::frame_alloc(200);
  fa::frame_free(more, 200);  // would exceed: to the depot
  EXPECT_EQ(fa::frame_cache_bytes(), 256u);
  fa::set_frame_cache_limit(64);  // lowering it trims
  EXPECT_EQ(fa::frame_cache_bytes(), 0u);
  fa::trim_frame_cache();
  EXPECT_EQ(fa::frame_cache_bytes(), 0u);
}

TEST_F(FrameAlloc, ListsArePerThread) {
  void* a = fa::frame_alloc(64);
  fa::frame_free(a, 64);
  std::size_t other_cached = 1;
  std::thread([&] { other_cached = fa::frame_cache_bytes(); }).join();
  EXPECT_EQ(other_cached, 0u);
  EXPECT_EQ(fa::frame_cache_bytes(), 64u);
}

TEST_F(FrameAlloc, BlocksAreCarvedBackToBackWithoutHeaders) {
  // Fresh blocks of one class come from a slab, each right after the previous one: no malloc header between.
  void* blocks[8];
  for (auto& b : blocks) b = fa::frame_alloc(4000);  // a class nobody else uses in this test binary
  int adjacent = 0;
  for (int i = 1; i < 8; ++i)
    if (static_cast<char*>(blocks[i]) - static_cast<char*>(blocks[i - 1]) == 4000) ++adjacent;
  EXPECT_GE(adjacent, 6);  // at most one slab boundary among 8 blocks of 4000 bytes
  for (auto* b : blocks) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % 16, 0u);
    fa::frame_free(b, 4000);
  }
}

TEST_F(FrameAlloc, BlocksFreedOnAnotherThreadAndAThreadsCacheAtExitAreReused) {
  // A thread allocates and caches blocks, then exits: its cache goes to the depot, and this thread's next misses
  // of that class are served from there rather than from a new slab.
  void* theirs[4];
  std::thread([&] {
    for (auto& b : theirs) b = fa::frame_alloc(3000);
    for (auto* b : theirs) fa::frame_free(b, 3000);
  }).join();
  int reused = 0;
  void* mine[4];
  for (auto& b : mine) {
    b = fa::frame_alloc(3000);
    for (auto* t : theirs)
      if (t == b) ++reused;
  }
  EXPECT_EQ(reused, 4);
  // Freed here, they join this thread's lists.
  for (auto* b : mine) fa::frame_free(b, 3000);
  EXPECT_EQ(fa::frame_cache_bytes(), 4u * 3008u);
}

}  // namespace
