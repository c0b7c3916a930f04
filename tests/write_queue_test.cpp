// The stream transports' write queue on its own: one pointer of state (a circular chunk list reached through its
// tail, the byte count in the tail chunk), so these tests walk the list's edges: appends that fill a chunk exactly,
// spill into the next, or need a chunk of their own; partial and whole-chunk consumes; gather's iovec cap; and
// that a drained or cleared queue owns nothing and gives its 4 KiB chunks back to the thread's pool.
#include "net/write_queue.hpp"

#include <sys/uio.h>

#include <cstddef>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using tulipa::detail::WriteQueue;

namespace {

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

// What gather() would send, concatenated.
std::string gathered(const WriteQueue& q, int max = WriteQueue::max_iov) {
  std::vector<iovec> iov(static_cast<std::size_t>(max));
  int n = q.gather(iov.data(), max);
  std::string out;
  for (int i = 0; i < n; ++i) {
    EXPECT_GT(iov[static_cast<std::size_t>(i)].iov_len, 0u) << "entry " << i;
    out.append(static_cast<const char*>(iov[static_cast<std::size_t>(i)].iov_base),
               iov[static_cast<std::size_t>(i)].iov_len);
  }
  return out;
}

int entries(const WriteQueue& q) {
  iovec iov[WriteQueue::max_iov];
  return q.gather(iov, WriteQueue::max_iov);
}

std::string pattern(std::size_t n, std::size_t seed = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return s;
}

TEST(WriteQueue, IsOnePointer) { EXPECT_EQ(sizeof(WriteQueue), sizeof(void*)); }

TEST(WriteQueue, EmptyQueueGathersNothing) {
  WriteQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(entries(q), 0);
  q.consume(0);
  q.clear();
  EXPECT_TRUE(q.empty());
}

TEST(WriteQueue, SmallAppendsShareAChunk) {
  WriteQueue q;
  q.append(bytes("hello "));
  q.append(bytes("world"));
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.size(), 11u);
  EXPECT_EQ(entries(q), 1);
  EXPECT_EQ(gathered(q), "hello world");
}

TEST(WriteQueue, AppendSpillsIntoTheNextChunkInOrder) {
  WriteQueue q;
  std::string a = pattern(WriteQueue::chunk_size - 10, 1);
  std::string b = pattern(100, 2);  // 10 bytes fill the first chunk, 90 go to a second
  q.append(bytes(a));
  q.append(bytes(b));
  EXPECT_EQ(q.size(), a.size() + b.size());
  EXPECT_EQ(entries(q), 2);
  EXPECT_EQ(gathered(q), a + b);
}

TEST(WriteQueue, ExactlyFullChunkThenMore) {
  WriteQueue q;
  std::string a = pattern(WriteQueue::chunk_size, 3);
  q.append(bytes(a));
  EXPECT_EQ(entries(q), 1);
  q.append(bytes("x"));
  EXPECT_EQ(entries(q), 2);
  EXPECT_EQ(gathered(q), a + "x");
}

TEST(WriteQueue, LargePieceGetsAChunkOfItsOwnSize) {
  WriteQueue q;
  q.append(bytes("head"));
  std::string big = pattern(5 * WriteQueue::chunk_size + 3, 4);
  q.append(bytes(big));
  // The rest of the first 4 KiB chunk, then one chunk for what is left of the piece.
  EXPECT_EQ(entries(q), 2);
  EXPECT_EQ(q.size(), 4 + big.size());
  EXPECT_EQ(gathered(q), "head" + big);
}

TEST(WriteQueue, ConsumeWithinAndAcrossChunks) {
  WriteQueue q;
  std::string all;
  for (int i = 0; i < 5; ++i) {
    std::string piece = pattern(WriteQueue::chunk_size, static_cast<std::size_t>(i));
    q.append(bytes(piece));
    all += piece;
  }
  ASSERT_EQ(entries(q), 5);
  q.consume(100);  // inside the head
  EXPECT_EQ(q.size(), all.size() - 100);
  EXPECT_EQ(gathered(q), all.substr(100));
  q.consume(WriteQueue::chunk_size - 100);  // exactly the rest of the head
  EXPECT_EQ(entries(q), 4);
  EXPECT_EQ(gathered(q), all.substr(WriteQueue::chunk_size));
  q.consume(2 * WriteQueue::chunk_size + 1);  // two whole chunks and one byte of the next
  EXPECT_EQ(entries(q), 2);
  EXPECT_EQ(gathered(q), all.substr(3 * WriteQueue::chunk_size + 1));
  // Appending after consumes still lands at the end.
  q.append(bytes("tail"));
  EXPECT_EQ(gathered(q), all.substr(3 * WriteQueue::chunk_size + 1) + "tail");
  q.consume(q.size());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(entries(q), 0);
}

TEST(WriteQueue, GatherStopsAtMax) {
  WriteQueue q;
  std::string all;
  for (int i = 0; i < 10; ++i) {
    std::string piece = pattern(WriteQueue::chunk_size, static_cast<std::size_t>(i));
    q.append(bytes(piece));
    all += piece;
  }
  EXPECT_EQ(gathered(q, 3), all.substr(0, 3 * WriteQueue::chunk_size));
  EXPECT_EQ(entries(q), 10);
}

TEST(WriteQueue, DrainedAndClearedQueuesReturnChunksToThePool) {
  std::size_t before = WriteQueue::pooled_chunks();
  {
    WriteQueue q;
    for (int i = 0; i < 3; ++i) q.append(bytes(pattern(WriteQueue::chunk_size)));
    // Served from the pool first: at most `before` of them came from it.
    std::size_t taken = before >= 3 ? 3 : before;
    EXPECT_EQ(WriteQueue::pooled_chunks(), before - taken);
    q.consume(q.size());
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(WriteQueue::pooled_chunks(), before - taken + 3);
    before = WriteQueue::pooled_chunks();
    q.append(bytes(pattern(10)));
    q.append(bytes(pattern(WriteQueue::chunk_size)));
    EXPECT_EQ(WriteQueue::pooled_chunks(), before - 2);
    q.clear();
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(WriteQueue::pooled_chunks(), before);
    q.append(bytes(pattern(WriteQueue::chunk_size * 2)));
  }
  // The destructor frees what was left.
  EXPECT_EQ(WriteQueue::pooled_chunks(), before);
}

TEST(WriteQueue, ReusedAfterDrainingManyTimes) {
  WriteQueue q;
  std::string expect;
  for (int round = 0; round < 50; ++round) {
    std::string piece = pattern(static_cast<std::size_t>(round) * 331 + 1, static_cast<std::size_t>(round));
    q.append(bytes(piece));
    expect += piece;
    // Consume in an uneven rhythm so the head moves across chunk boundaries.
    std::size_t n = expect.size() / 3;
    q.consume(n);
    expect.erase(0, n);
    ASSERT_EQ(q.size(), expect.size());
    ASSERT_EQ(gathered(q), expect) << "round " << round;
  }
  q.consume(q.size());
  EXPECT_TRUE(q.empty());
}

}  // namespace
