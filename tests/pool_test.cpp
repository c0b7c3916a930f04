// FixedPool (src/net/pool.hpp): blocks are distinct, aligned and reused; a burst's slabs are unmapped once their
// blocks are all free again, down to the bounded reserve.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "net/pool.hpp"

namespace {

using Pool = tulipa::detail::FixedPool<200>;

TEST(FixedPool, BlocksAreDistinctAlignedAndWritable) {
  Pool pool;
  std::vector<void*> blocks;
  std::set<std::uintptr_t> seen;
  for (int i = 0; i < 2000; ++i) {
    void* p = pool.allocate();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t), 0u);
    std::memset(p, i & 0xff, 200);
    EXPECT_TRUE(seen.insert(reinterpret_cast<std::uintptr_t>(p)).second);
    blocks.push_back(p);
  }
  // Every block kept what was written to it (no two overlap).
  for (int i = 0; i < 2000; ++i) {
    const auto* b = static_cast<const unsigned char*>(blocks[i]);
    EXPECT_EQ(b[0], i & 0xff);
    EXPECT_EQ(b[199], i & 0xff);
  }
  for (void* p : blocks) pool.deallocate(p);
}

TEST(FixedPool, ABurstIsGivenBackDownToTheReserve) {
  Pool pool;
  std::vector<void*> blocks;
  for (int i = 0; i < 20000; ++i) blocks.push_back(pool.allocate());  // about 4 MiB: 62 slabs
  const std::size_t peak = pool.slabs();
  EXPECT_GE(peak, 20000 * 200 / (64 * 1024));
  std::shuffle(blocks.begin(), blocks.end(), std::mt19937(42));
  for (void* p : blocks) pool.deallocate(p);
  // What stays mapped is the reserve (256 KiB of slabs) and at most the slab being emptied.
  EXPECT_LE(pool.slabs(), Pool::reserve_bytes / (64 * 1024) + 1);
  // And it serves the next connections without mapping more.
  const std::size_t kept = pool.slabs();
  std::vector<void*> again;
  for (std::size_t i = 0; i < Pool::reserve_blocks; ++i) again.push_back(pool.allocate());
  EXPECT_EQ(pool.slabs(), kept);
  for (void* p : again) pool.deallocate(p);
}

TEST(FixedPool, ChurnAroundASteadyCountReusesSlabs) {
  Pool pool;
  std::vector<void*> live;
  for (int i = 0; i < 1000; ++i) live.push_back(pool.allocate());
  const std::size_t steady = pool.slabs();
  std::mt19937 rng(7);
  for (int round = 0; round < 100000; ++round) {
    const std::size_t k = rng() % live.size();
    pool.deallocate(live[k]);
    live[k] = pool.allocate();
  }
  EXPECT_LE(pool.slabs(), steady + 1);
  for (void* p : live) pool.deallocate(p);
}

}  // namespace
