// The coroutine frame allocator: size classes, reuse, the cache limit, trimming, per-thread lists.
#include <gtest/gtest.h>

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
  void* a = fa::frame_alloc(100);  // class 97..128
  fa::frame_free(a, 100);
  EXPECT_EQ(fa::frame_cache_bytes(), 128u);
  auto misses = fa::frame_allocations();
  void* b = fa::frame_alloc(120);  // same class: the same block
  EXPECT_EQ(a, b);
  EXPECT_EQ(fa::frame_allocations(), misses);
  EXPECT_EQ(fa::frame_cache_bytes(), 0u);
  void* c = fa::frame_alloc(129);  // next class: a new block
  EXPECT_NE(c, b);
  EXPECT_EQ(fa::frame_allocations(), misses + 1);
  EXPECT_EQ(fa::last_frame_size(), 129u);
  fa::frame_free(b, 120);
  fa::frame_free(c, 129);
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
  fa::frame_free(more, 200);  // would exceed: back to the heap
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

}  // namespace
