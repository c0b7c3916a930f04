// FdMap (src/selectors/fd_map.hpp): the selectors' per-fd bookkeeping, with a tiny dense limit so that both the
// vector and the hash map are exercised (the selector suite cannot always reach fd 65536: RLIMIT_NOFILE).
#include <gtest/gtest.h>

#include "selectors/fd_map.hpp"

namespace tulipa::detail {
namespace {

struct Entry {
  int value = 0;
  bool occupied() const noexcept { return value != 0; }
};

TEST(FdMap, DenseAndSparseFdsBehaveAlike) {
  FdMap<Entry> map(8);
  EXPECT_EQ(map.find(3), nullptr);
  EXPECT_EQ(map.find(-1), nullptr);
  EXPECT_EQ(map.find(100), nullptr);

  map.insert(3, Entry{30});
  map.insert(100, Entry{1000});  // beyond the dense limit: the hash map
  map.insert(7, Entry{70});      // the last dense slot
  map.insert(8, Entry{80});      // the first sparse one
  EXPECT_EQ(map.size(), 4u);
  EXPECT_EQ(map.sparse_size(), 2u);
  EXPECT_LE(map.dense_capacity(), 8u);
  ASSERT_NE(map.find(3), nullptr);
  EXPECT_EQ(map.find(3)->value, 30);
  EXPECT_EQ(map.find(7)->value, 70);
  EXPECT_EQ(map.find(8)->value, 80);
  EXPECT_EQ(map.find(100)->value, 1000);
  EXPECT_EQ(map.find(4), nullptr);
  EXPECT_EQ(map.find(101), nullptr);

  map.find(100)->value = 1001;  // found entries are mutable in place
  EXPECT_EQ(map.find(100)->value, 1001);

  EXPECT_TRUE(map.erase(3));
  EXPECT_FALSE(map.erase(3));
  EXPECT_TRUE(map.erase(100));
  EXPECT_FALSE(map.erase(100));
  EXPECT_FALSE(map.erase(-5));
  EXPECT_FALSE(map.erase(5000));
  EXPECT_EQ(map.find(3), nullptr);
  EXPECT_EQ(map.find(100), nullptr);
  EXPECT_EQ(map.size(), 2u);
  EXPECT_EQ(map.sparse_size(), 1u);
}

TEST(FdMap, DenseTableGrowsToTheHighestFdOnly) {
  FdMap<Entry> map;  // the selectors' default limit
  map.insert(0, Entry{1});
  std::size_t small = map.dense_capacity();
  EXPECT_GE(small, 1u);
  map.insert(1000, Entry{2});
  EXPECT_GE(map.dense_capacity(), 1001u);
  EXPECT_LE(map.dense_capacity(), 2048u);  // doubling, not a jump to the limit
  EXPECT_EQ(map.find(0)->value, 1);
  EXPECT_EQ(map.find(1000)->value, 2);
  map.insert(500000, Entry{3});
  EXPECT_LE(map.dense_capacity(), std::size_t(FdMap<Entry>::default_dense_limit));
  EXPECT_EQ(map.sparse_size(), 1u);
  EXPECT_EQ(map.find(500000)->value, 3);
}

}  // namespace
}  // namespace tulipa::detail
