// Bytes and the chunk pool behind it: contents, the size classes and big chunks (whose capacity is kept in the
// chunk's own header), moves, reset, and the pool's reuse (no heap allocation in steady state).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <utility>

#include "tulipa/bytes.hpp"

using namespace tulipa;

// A Bytes sits in coroutine frames (one per connection handler): its size is part of the per-connection budget.
static_assert(sizeof(Bytes) == 16);

TEST(Bytes, EmptyByDefault) {
  Bytes b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_EQ(b.view(), "");
  EXPECT_TRUE(Bytes(std::string_view()).empty());
}

TEST(Bytes, CopiesIntoASizeClass) {
  Bytes small("hello");
  EXPECT_EQ(small, "hello");
  EXPECT_EQ(small.capacity(), 256u);
  const std::string text(1500, 'q');
  Bytes mid(text);
  EXPECT_EQ(mid.view(), text);
  EXPECT_EQ(mid.capacity(), 2048u);
  const std::string full(65536, 'f');
  Bytes largest(full);
  EXPECT_EQ(largest.capacity(), 65536u);
  EXPECT_EQ(largest.str(), full);
}

TEST(Bytes, BigChunksKeepTheirCapacity) {
  std::string text(100000, '\0');
  for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>(i * 7);
  Bytes big(text);
  EXPECT_EQ(big.size(), text.size());
  EXPECT_EQ(big.capacity(), 102400u);  // rounded up to pages
  EXPECT_EQ(big.view(), text);
  Bytes moved = std::move(big);
  EXPECT_EQ(moved.capacity(), 102400u);
  EXPECT_EQ(moved.view(), text);
  EXPECT_TRUE(big.empty());  // NOLINT(bugprone-use-after-move): a moved-from Bytes is empty
  EXPECT_EQ(big.capacity(), 0u);
  const std::size_t cached = detail::chunk_cache_bytes();
  moved.reset();
  EXPECT_TRUE(moved.empty());
  EXPECT_EQ(detail::chunk_cache_bytes(), cached);  // big chunks go back to the heap, not the pool
}

TEST(Bytes, AdoptsAPartOfAChunk) {
  detail::Chunk c = detail::chunk_alloc(3000);
  ASSERT_EQ(c.capacity, 4096u);
  std::memcpy(c.data, "..payload..", 11);
  Bytes b = Bytes::adopt(c, 2, 7);
  EXPECT_EQ(b, "payload");
  EXPECT_EQ(b.capacity(), 4096u);
  EXPECT_EQ(b.data(), c.data + 2);

  detail::Chunk big = detail::chunk_alloc(200000);
  EXPECT_EQ(big.capacity, 200704u);
  std::memcpy(big.data + 199990, "tail", 4);
  Bytes tail = Bytes::adopt(big, 199990, 4);
  EXPECT_EQ(tail, "tail");
  EXPECT_EQ(tail.capacity(), big.capacity);
}

TEST(Bytes, MoveAssignmentGivesTheOldChunkBack) {
  detail::trim_chunk_cache();
  Bytes a("first");
  Bytes b(std::string(1000, 'b'));
  a = std::move(b);
  EXPECT_EQ(a.size(), 1000u);
  EXPECT_EQ(a.capacity(), 1024u);
  EXPECT_EQ(detail::chunk_cache_bytes(), 256u);  // "first"'s chunk is back in the pool
}

TEST(Bytes, SteadyStateTakesNothingFromTheHeap) {
  {
    Bytes warm_small("w");
    Bytes warm(std::string(700, 'w'));
  }
  const std::uint64_t before = detail::chunk_heap_allocations();
  for (int i = 0; i < 1000; ++i) {
    Bytes b(std::string_view("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    Bytes c(std::string(700, 'c'));
    EXPECT_EQ(c.size(), 700u);
  }
  EXPECT_EQ(detail::chunk_heap_allocations(), before);
}
