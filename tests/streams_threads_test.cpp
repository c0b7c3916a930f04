// Streams and threads: a reader without transport is a heap object (a connection's state is a block of its loop
// thread's pool), so it may be made on one thread and used and destroyed on another, even after the first ended.
#include <gtest/gtest.h>

#include <thread>
#include <utility>

#include "tulipa/bytes.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/streams.hpp"

using namespace tulipa;

TEST(StreamReaderThreads, AReaderOutlivesTheThreadThatMadeIt) {
  StreamReader moved_out(1024);
  std::thread maker([&moved_out] {
    StreamReader r(4096);
    r.feed_data("made on another thread\n");
    moved_out = std::move(r);
  });
  maker.join();  // its thread-local pools are gone now
  EXPECT_EQ(moved_out.limit(), 4096u);
  EXPECT_EQ(moved_out.buffered(), 23u);
  EventLoop loop;
  Bytes line =
      run_until_complete(loop, [](StreamReader r) -> Coro<Bytes> { co_return co_await r.readline(); }(moved_out));
  EXPECT_EQ(line, "made on another thread\n");
}

TEST(StreamReaderThreads, AReaderDroppedOnAnotherThread) {
  StreamReader r;
  r.feed_data("x");
  std::thread dropper([r = std::move(r)]() mutable {
    EXPECT_EQ(r.buffered(), 1u);
    StreamReader gone = std::move(r);
  });
  dropper.join();
  StreamReader next;  // the main thread's allocations are unaffected
  next.feed_data("y");
  EXPECT_EQ(next.buffered(), 1u);
}
