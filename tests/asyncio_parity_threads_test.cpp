// asyncio parity (issue 10) where a second thread is involved: call_soon_threadsafe and call_soon feed one FIFO,
// and debug mode refuses call_soon/call_later/call_at from a thread other than the loop's.
#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tulipa/loop.hpp"

using namespace tulipa;
using namespace std::chrono_literals;

TEST(AsyncioParityThreads, CallSoonThreadsafeFromTheLoopThreadRunsBeforeALaterCallSoon) {
  EventLoop loop;
  std::vector<char> order;
  loop.call_soon([&] {
    loop.call_soon_threadsafe([&] { order.push_back('a'); });
    loop.call_soon([&] { order.push_back('b'); });
  });
  loop.run_once();
  loop.run_once();
  EXPECT_EQ(order, (std::vector<char>{'a', 'b'}));
}

TEST(AsyncioParityThreads, CallSoonThreadsafeFromAnotherThreadBeforeTheLoopWokeRunsFirst) {
  EventLoop loop;
  std::vector<char> order;
  loop.call_soon([&] {
    std::thread other([&] { loop.call_soon_threadsafe([&] { order.push_back('a'); }); });
    other.join();  // queued while the loop is busy in this callback, not collected yet
    loop.call_soon([&] { order.push_back('b'); });
  });
  loop.run_once();
  loop.run_once();
  EXPECT_EQ(order, (std::vector<char>{'a', 'b'}));
}

TEST(AsyncioParityThreads, DebugModeRefusesSchedulingFromAnotherThread) {
  EventLoop loop;
  loop.set_debug(true);
  std::vector<std::string> errors;
  loop.call_soon([&] {
    std::thread other([&] {
      auto attempt = [&](auto&& call) {
        try {
          call();
          errors.push_back("accepted");
        } catch (const std::logic_error& e) {
          errors.push_back(e.what());
        }
      };
      attempt([&] { loop.call_soon([] {}); });
      attempt([&] { loop.call_later(1s, [] {}); });
      attempt([&] { loop.call_at(loop.time() + 1s, [] {}); });
    });
    other.join();
    loop.stop();
  });
  loop.run_forever();
  ASSERT_EQ(errors.size(), 3u);
  for (const std::string& e : errors)
    EXPECT_NE(e.find("Non-thread-safe operation invoked on an event loop other than the current one"),
              std::string::npos)
        << e;
  // From the loop's own thread, and from any thread while it does not run, scheduling is fine.
  int ran = 0;
  loop.call_soon([&] { ++ran; });
  std::thread([&] { loop.call_soon([&] { ++ran; }); }).join();
  loop.run_once();
  EXPECT_EQ(ran, 2);
}
