// FdMap (src/selectors/fd_map.hpp): the selectors' and the loop's per-fd bookkeeping: pages of slots for small fds,
// a hash map for huge ones. A tiny dense limit exercises both parts (the selector suite cannot always reach fd 65536:
// RLIMIT_NOFILE); these are plain numbers, no real fds.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

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
  EXPECT_EQ(map.dense_capacity(), FdMap<Entry>::page_slots);  // one page, of which 8 slots are used
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

TEST(FdMap, DenseTableGrowsAPageAtATimeWhereFdsAre) {
  using Map = FdMap<Entry>;
  constexpr std::size_t page = Map::page_slots;
  Map map;  // the selectors' default limit
  EXPECT_EQ(map.dense_capacity(), 0u);
  map.insert(0, Entry{1});
  EXPECT_EQ(map.dense_capacity(), page);
  map.insert(int(page) - 1, Entry{2});  // the same page
  EXPECT_EQ(map.dense_capacity(), page);
  map.insert(1000, Entry{3});  // only 1000's page: the ones between stay unallocated
  EXPECT_EQ(map.dense_capacity(), 2 * page);
  EXPECT_EQ(map.find(int(page)), nullptr);  // in a page never allocated
  EXPECT_EQ(map.find(999), nullptr);        // an empty slot of an allocated page
  EXPECT_EQ(map.find(0)->value, 1);
  EXPECT_EQ(map.find(int(page) - 1)->value, 2);
  EXPECT_EQ(map.find(1000)->value, 3);
  map.insert(500000, Entry{4});  // beyond the dense limit: no page for it
  EXPECT_EQ(map.dense_capacity(), 2 * page);
  EXPECT_EQ(map.sparse_size(), 1u);
  EXPECT_EQ(map.find(500000)->value, 4);
  map.insert(Map::default_dense_limit - 1, Entry{5});  // the last dense fd: the last page
  EXPECT_EQ(map.dense_capacity(), 3 * page);
  EXPECT_EQ(map.sparse_size(), 1u);
  EXPECT_EQ(map.find(Map::default_dense_limit - 1)->value, 5);
  EXPECT_EQ(map.size(), 5u);
}

// 10,010 fds (a server with 10,000 connections) take 40 pages, not the 16,384 slots of a doubling vector.
TEST(FdMap, TenThousandFdsCostTheirPagesOnly) {
  FdMap<Entry> map;
  for (int fd = 0; fd < 10010; ++fd) map.insert(fd, Entry{fd + 1});
  EXPECT_EQ(map.dense_capacity(), 40 * FdMap<Entry>::page_slots);
  EXPECT_EQ(map.size(), 10010u);
  for (int fd = 0; fd < 10010; ++fd) ASSERT_EQ(map.find(fd)->value, fd + 1) << fd;
  EXPECT_EQ(map.find(10010), nullptr);
}

TEST(FdMap, FdsAcrossPageBoundaries) {
  const int page = int(FdMap<Entry>::page_slots);
  FdMap<Entry> map;
  const std::vector<int> fds = {page - 1, page, page + 1, 2 * page - 1, 2 * page, 5 * page};
  for (int fd : fds) map.insert(fd, Entry{fd + 1});
  for (int fd : fds) {
    ASSERT_NE(map.find(fd), nullptr) << fd;
    EXPECT_EQ(map.find(fd)->value, fd + 1);
  }
  for (int fd : {0, page - 2, page + 2, 2 * page + 1, 3 * page, 5 * page - 1, 5 * page + 1})
    EXPECT_EQ(map.find(fd), nullptr) << fd;
  EXPECT_TRUE(map.erase(page));
  EXPECT_EQ(map.find(page), nullptr);
  EXPECT_EQ(map.find(page - 1)->value, page);  // its neighbours on either side of the boundary are untouched
  EXPECT_EQ(map.find(page + 1)->value, page + 2);
  EXPECT_EQ(map.size(), fds.size() - 1);
}

TEST(FdMap, EraseThenReinsertReusesTheSlot) {
  FdMap<Entry> map;
  Entry* first = &map.insert(300, Entry{1});
  const std::size_t capacity = map.dense_capacity();
  EXPECT_TRUE(map.erase(300));
  EXPECT_EQ(map.find(300), nullptr);
  EXPECT_FALSE(map.erase(300));
  Entry* again = &map.insert(300, Entry{2});
  EXPECT_EQ(again, first);  // the same slot: pages are kept, so reopening allocates nothing
  EXPECT_EQ(map.dense_capacity(), capacity);
  EXPECT_EQ(map.find(300)->value, 2);
  EXPECT_EQ(map.size(), 1u);
}

// Stronger than a vector: an entry stays put however many fds are inserted or erased after it (the loop relies on
// this to keep an entry across calls that register more fds).
TEST(FdMap, PointersStayValidAcrossInsertsAndOtherErases) {
  FdMap<Entry> map(4096);
  std::vector<std::pair<int, Entry*>> kept;
  kept.emplace_back(3, &map.insert(3, Entry{4}));
  kept.emplace_back(5000, &map.insert(5000, Entry{5001}));             // a sparse one
  for (int fd = 4; fd < 4000; ++fd) map.insert(fd, Entry{fd + 1});     // grows the page array several times
  for (int fd = 6000; fd < 6500; ++fd) map.insert(fd, Entry{fd + 1});  // rehashes the sparse part
  for (int fd = 4; fd < 4000; fd += 2) map.erase(fd);
  for (auto [fd, entry] : kept) {
    EXPECT_EQ(map.find(fd), entry) << fd;
    EXPECT_EQ(entry->value, fd + 1);
  }
}

TEST(FdMap, HugeFdLivesInTheHashMap) {
  FdMap<Entry> map;
  map.insert(1 << 30, Entry{7});
  EXPECT_EQ(map.dense_capacity(), 0u);
  EXPECT_EQ(map.sparse_size(), 1u);
  EXPECT_EQ(map.find(1 << 30)->value, 7);
  EXPECT_EQ(map.find((1 << 30) - 1), nullptr);
  EXPECT_TRUE(map.erase(1 << 30));
  EXPECT_TRUE(map.empty());
}

TEST(FdMap, ForEachVisitsDenseFdsInOrderThenHugeOnes) {
  const int page = int(FdMap<Entry>::page_slots);
  FdMap<Entry> map(4 * page);
  const std::vector<int> dense = {0, 7, page - 1, page, 3 * page + 5, 4 * page - 1};
  for (auto it = dense.rbegin(); it != dense.rend(); ++it) map.insert(*it, Entry{*it + 1});  // inserted backwards
  map.insert(4 * page, Entry{1});
  map.insert(100000, Entry{1});
  map.insert(2 * page, Entry{1});
  map.erase(2 * page);
  std::vector<int> seen;
  map.for_each([&](int fd, Entry& e) {
    seen.push_back(fd);
    e.value += 1000;  // values are mutable in place
  });
  ASSERT_EQ(seen.size(), dense.size() + 2);
  EXPECT_EQ(std::vector<int>(seen.begin(), seen.begin() + std::ptrdiff_t(dense.size())), dense);
  std::vector<int> huge(seen.begin() + std::ptrdiff_t(dense.size()), seen.end());
  std::sort(huge.begin(), huge.end());
  EXPECT_EQ(huge, (std::vector<int>{4 * page, 100000}));
  EXPECT_EQ(map.find(7)->value, 1008);
}

// Values that own something (the loop's entries own their add_reader state): erase and destruction release it.
TEST(FdMap, ErasingOrDestroyingReleasesOwnedValues) {
  struct Owning {
    std::shared_ptr<int> p;
    bool occupied() const noexcept { return p != nullptr; }
  };
  auto token = std::make_shared<int>(1);
  {
    FdMap<Owning> map(8);
    map.insert(1, Owning{token});
    map.insert(300, Owning{token});  // sparse with this limit
    map.insert(2, Owning{token});
    EXPECT_EQ(token.use_count(), 4);
    EXPECT_TRUE(map.erase(1));
    EXPECT_TRUE(map.erase(300));
    EXPECT_EQ(token.use_count(), 2);
    map.insert(3, Owning{token});
    EXPECT_EQ(token.use_count(), 3);
  }
  EXPECT_EQ(token.use_count(), 1);
}

}  // namespace
}  // namespace tulipa::detail
