// The coroutine frame allocator: size classes, reuse, the cache limit, trimming, per-thread lists, and memory given
// back after a burst.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "loop/heap_trim.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/task.hpp"

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

constexpr std::size_t MiB = std::size_t(1) << 20;

// A burst of 40,000 blocks (about 8 MiB of slabs) freed again: release_frame_memory gives back every slab beyond the
// reserve (all but what earlier tests pin, the reserve and the thread's current slab), and the class still works.
TEST_F(FrameAlloc, ABurstIsGivenBackBeyondTheReserve) {
  fa::release_frame_memory();  // from what earlier tests left
  const std::size_t before = fa::frame_slab_bytes();
  std::vector<void*> blocks(40000);
  for (auto& b : blocks) b = fa::frame_alloc(200);
  EXPECT_GE(fa::frame_slab_bytes(), before + 6 * MiB);
  for (void* b : blocks) fa::frame_free(b, 200);
  EXPECT_TRUE(fa::frame_memory_to_release());
  EXPECT_GE(fa::release_frame_memory(), 6 * MiB);
  EXPECT_LE(fa::frame_slab_bytes(), before + fa::frame_reserve_bytes + 64 * 1024);
  EXPECT_FALSE(fa::frame_memory_to_release());  // nothing more to do until more is freed
  void* again = fa::frame_alloc(200);
  fa::frame_free(again, 200);
}

// A slab with one block still in use stays; it goes once that block is freed (and in the depot).
TEST_F(FrameAlloc, ASlabWithABlockInUseStays) {
  fa::release_frame_memory();
  const std::size_t before = fa::frame_slab_bytes();
  std::vector<void*> blocks(20000);
  for (auto& b : blocks) b = fa::frame_alloc(480);  // about 9 MiB
  void* survivor = blocks[blocks.size() / 2];
  for (void* b : blocks)
    if (b != survivor) fa::frame_free(b, 480);
  fa::release_frame_memory();
  const std::size_t pinned = fa::frame_slab_bytes();
  EXPECT_LE(pinned, before + fa::frame_reserve_bytes + 2 * 64 * 1024);  // the survivor's slab, the current one
  fa::frame_free(survivor, 480);
  fa::trim_frame_cache();  // its block is in this thread's lists (under the reserve): to the depot
  fa::release_frame_memory();
  EXPECT_LT(fa::frame_slab_bytes(), pinned);  // the reserve is full (the burst's other slabs): it goes
}

// The loop gives a burst back by itself, when it is about to sleep (with its heap trim, at most once a second).
TEST_F(FrameAlloc, TheLoopGivesABurstBackWhenItIsAboutToSleep) {
  fa::release_frame_memory();
  const std::size_t before = fa::frame_slab_bytes();
  tulipa::EventLoop loop;
  std::vector<tulipa::Task<int>> tasks;
  tasks.reserve(20000);
  for (int i = 0; i < 20000; ++i)
    tasks.push_back(tulipa::create_task(loop, [](int v) -> tulipa::Coro<int> { co_return v; }(i)));
  while (!tasks.back().done()) loop.run_once();
  EXPECT_GE(fa::frame_slab_bytes(), before + 2 * MiB);
  tasks.clear();  // the task states go to the thread's lists
  const std::size_t trims = tulipa::detail::heap_trims();
  bool timed_out = false;
  auto watchdog = loop.call_later(std::chrono::seconds(10), [&] { timed_out = true; });
  while (tulipa::detail::heap_trims() == trims && !timed_out) {
    [[maybe_unused]] auto tick = loop.call_later(std::chrono::milliseconds(1), [] {});  // each pass sleeps briefly
    loop.run_once();
  }
  watchdog.cancel();
  ASSERT_FALSE(timed_out);
  EXPECT_LE(fa::frame_slab_bytes(), before + fa::frame_reserve_bytes + 64 * 1024);
}

}  // namespace
