// Bytes and the chunk pool behind it, and the TaggedPtr word that holds a Bytes's chunk (also used by the promise
// links and the stream waiters): contents, the size classes and big chunks (whose capacity is kept in the
// chunk's own header), moves, reset, and the pool's reuse (no heap allocation in steady state).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "streams/chunk_pool.hpp"
#include "tulipa/bytes.hpp"
#include "tulipa/detail/bytes_access.hpp"
#include "tulipa/detail/tagged_ptr.hpp"

using namespace tulipa;

// A Bytes sits in coroutine frames (one per connection handler): its size is part of the per-connection budget
// (bytes.hpp asserts its 16 bytes).

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
  Bytes b = detail::BytesAccess::adopt(c, 2, 7);
  EXPECT_EQ(b, "payload");
  EXPECT_EQ(b.capacity(), 4096u);
  EXPECT_EQ(b.data(), c.data + 2);

  detail::Chunk big = detail::chunk_alloc(200000);
  EXPECT_EQ(big.capacity, 200704u);
  std::memcpy(big.data + 199990, "tail", 4);
  Bytes tail = detail::BytesAccess::adopt(big, 199990, 4);
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

// After a burst (10,000 connections' 2 KiB read buffers freed at once), what the pool caches beyond its 1 MiB reserve
// is given back (by the loop about to sleep, through release_chunk_memory), the biggest chunks first, once it stayed
// unused for a whole period; chunks taken and given back in between (a steady load) stay.
TEST(Bytes, ABurstIsGivenBackDownToTheReserve) {
  detail::trim_chunk_cache();
  std::vector<detail::Chunk> burst;
  for (int i = 0; i < 2000; ++i) burst.push_back(detail::chunk_alloc(2048));
  for (int i = 0; i < 100; ++i) burst.push_back(detail::chunk_alloc(300));
  for (auto& c : burst) detail::chunk_free(c);
  EXPECT_EQ(detail::chunk_cache_bytes(), 2000u * 2048 + 100 * 512);  // under the 8 MiB cap: all cached
  EXPECT_TRUE(detail::chunk_memory_to_release());
  EXPECT_EQ(detail::release_chunk_memory(), 0u);  // the burst's own period: all of it was in use
  EXPECT_TRUE(detail::chunk_memory_to_release());
  const std::size_t freed = detail::release_chunk_memory();  // a period later, unused since: beyond the reserve
  EXPECT_EQ(detail::chunk_cache_bytes(), 2000u * 2048 + 100 * 512 - freed);
  EXPECT_LE(detail::chunk_cache_bytes(), detail::chunk_reserve_bytes);
  EXPECT_GT(detail::chunk_cache_bytes(), detail::chunk_reserve_bytes - 2048);
  EXPECT_FALSE(detail::chunk_memory_to_release());
  EXPECT_EQ(detail::release_chunk_memory(), 0u);
  // The small chunks stayed (the biggest went first): taking them back allocates nothing.
  const std::uint64_t before = detail::chunk_heap_allocations();
  for (int i = 0; i < 100; ++i) burst[i] = detail::chunk_alloc(300);
  EXPECT_EQ(detail::chunk_heap_allocations(), before);
  for (int i = 0; i < 100; ++i) detail::chunk_free(burst[i]);
  // A steady load cycling through 2 MiB: nothing goes, so nothing is allocated again.
  std::vector<detail::Chunk> steady;
  for (int i = 0; i < 1024; ++i) steady.push_back(detail::chunk_alloc(2048));
  for (auto& c : steady) detail::chunk_free(c);
  detail::release_chunk_memory();
  for (auto& c : steady) c = detail::chunk_alloc(2048);
  for (auto& c : steady) detail::chunk_free(c);
  EXPECT_EQ(detail::release_chunk_memory(), 0u);
  const std::uint64_t again = detail::chunk_heap_allocations();
  for (auto& c : steady) c = detail::chunk_alloc(2048);
  EXPECT_EQ(detail::chunk_heap_allocations(), again);
  for (auto& c : steady) detail::chunk_free(c);
}

// --- TaggedPtr

namespace {
struct alignas(8) Eight {
  int x = 0;
};
}  // namespace

TEST(TaggedPtr, KeepsThePointerAndTheTagApart) {
  using detail::TaggedPtr;
  static_assert(TaggedPtr<3>::fits<Eight> && !TaggedPtr<4>::fits<Eight> && !TaggedPtr<1>::fits<char>);
  Eight e[2];
  for (TaggedPtr<3>::Tag tag = 0; tag <= TaggedPtr<3>::tag_mask; ++tag) {
    for (Eight& x : e) {
      TaggedPtr<3> p(&x, tag);
      EXPECT_EQ(p.ptr<Eight>(), &x);
      EXPECT_EQ(p.tag(), tag);
      EXPECT_TRUE(p);
    }
  }
  TaggedPtr<3> null_tagged(static_cast<Eight*>(nullptr), 2);
  EXPECT_EQ(null_tagged.ptr<Eight>(), nullptr);
  EXPECT_EQ(null_tagged.tag(), 2u);
  EXPECT_TRUE(null_tagged);  // only the null pointer with tag 0 is false
  EXPECT_FALSE(TaggedPtr<3>());
  EXPECT_EQ(TaggedPtr<3>().ptr(), nullptr);
}

TEST(TaggedPtr, SetsAndTestsSingleBits) {
  using detail::TaggedPtr;
  Eight e;
  TaggedPtr<3> p(&e, 1);
  EXPECT_TRUE(p.test(1));
  EXPECT_FALSE(p.test(2 | 4));
  p.set(4);
  EXPECT_TRUE(p.test(4));
  EXPECT_EQ(p.tag(), 5u);
  EXPECT_EQ(p.ptr<Eight>(), &e);
  p.set(8);  // beyond the tag's bits: ignored, the pointer stays whole
  EXPECT_EQ(p.ptr<Eight>(), &e);
  EXPECT_EQ(p.tag(), 5u);
  EXPECT_EQ(p, TaggedPtr<3>(&e, 5));
  EXPECT_FALSE(p == TaggedPtr<3>(&e, 1));
}

TEST(TaggedPtr, TagsAnAddressAlignedByItsAllocator) {
  using detail::TaggedPtr;
  // A chunk's data: 16-aligned by operator new, though std::byte is 1-aligned (how a Bytes holds its chunk).
  auto* block = new std::byte[64];
  auto p = TaggedPtr<4>::from_aligned(block, 15);
  EXPECT_EQ(p.ptr<std::byte>(), block);
  EXPECT_EQ(p.tag(), 15u);
  delete[] block;
}

TEST(Bytes, EverySizeClassRoundTripsThroughTheChunkWord) {
  for (std::size_t c = 0; c < detail::chunk_classes; ++c) {
    const std::size_t capacity = std::size_t{1} << (detail::chunk_min_shift + c);
    Bytes b(std::string(capacity, 'c'));
    EXPECT_EQ(b.capacity(), capacity);
    EXPECT_EQ(b.view(), std::string(capacity, 'c'));
  }
}
