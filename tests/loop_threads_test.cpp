// call_soon_threadsafe and stop_threadsafe from other threads (this file also runs under TSan).
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <thread>
#include <vector>

#include "tulipa/loop.hpp"

using namespace std::chrono_literals;
using tulipa::EventLoop;

namespace {

TEST(LoopThreads, ManyThreadsCallSoonThreadsafe) {
  EventLoop loop;
  constexpr int threads = 8, per_thread = 5000;
  int received = 0;  // touched by the loop thread only
  std::vector<int> last_seen(threads, -1);
  bool in_order = true;
  std::vector<std::thread> producers;
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        loop.call_soon_threadsafe([&, t, i] {
          if (last_seen[t] != i - 1) in_order = false;  // per-producer FIFO
          last_seen[t] = i;
          if (++received == threads * per_thread) loop.stop();
        });
      }
    });
  }
  loop.run_forever();
  for (auto& p : producers) p.join();
  EXPECT_EQ(received, threads * per_thread);
  EXPECT_TRUE(in_order);
}

TEST(LoopThreads, WakesASleepingLoop) {
  EventLoop loop;
  std::atomic<bool> sleeping_soon{false};
  bool ran = false;
  loop.call_soon([&] { sleeping_soon = true; });  // after this pass the loop has nothing to do: it sleeps forever
  std::thread t([&] {
    while (!sleeping_soon) std::this_thread::yield();
    loop.call_soon_threadsafe([&] {
      ran = true;
      loop.stop();
    });
  });
  loop.run_forever();
  t.join();
  EXPECT_TRUE(ran);
}

// A loop run on one thread, then on another (no connection served: it may move), keeps its signal handlers and its
// wake-ups. On io_uring the ring is rebuilt on the new thread and both resident reads (the eventfd's, the signal
// pipe's) are submitted again there.
TEST(LoopThreads, ALoopWithSignalHandlersMovesToAnotherThread) {
  EventLoop loop;
  int signals = 0;
  loop.add_signal_handler(SIGUSR2, [&] { ++signals; });
  loop.call_soon([] {});
  loop.run_once();
  std::thread t([&] {
    ::raise(SIGUSR2);
    while (signals == 0) loop.run_once();
    loop.call_soon_threadsafe([&] { loop.stop(); });
    loop.run_forever();
  });
  t.join();
  EXPECT_EQ(signals, 1);
  EXPECT_TRUE(loop.remove_signal_handler(SIGUSR2));
}

// An awake loop needs no wake-up syscall: while a callback keeps the loop busy, many threadsafe calls cost no
// eventfd write at all.
TEST(LoopThreads, NoWakeupSyscallWhenTheLoopIsAwake) {
  EventLoop loop;
  std::atomic<bool> go{false}, done{false};
  int received = 0;
  loop.call_soon([&] {
    go = true;
    while (!done) std::this_thread::yield();  // the loop is busy running this callback, not sleeping
  });
  std::thread t([&] {
    while (!go) std::this_thread::yield();
    for (int i = 0; i < 1000; ++i) loop.call_soon_threadsafe([&] { ++received; });
    done = true;
  });
  loop.run_once();
  t.join();
  loop.run_once();  // picks up the batch without sleeping
  EXPECT_EQ(received, 1000);
  EXPECT_EQ(loop.threadsafe_wakeups(), 0u);
}

TEST(LoopThreads, StopThreadsafe) {
  EventLoop loop;
  std::atomic<bool> started{false};
  loop.call_soon([&] { started = true; });
  std::thread t([&] {
    while (!started) std::this_thread::yield();
    loop.stop_threadsafe();
  });
  loop.run_forever();
  t.join();
  EXPECT_FALSE(loop.is_running());
}

TEST(LoopThreads, ThreadsafeCallsRacingWithClose) {
  for (int round = 0; round < 20; ++round) {
    auto loop = std::make_unique<EventLoop>();
    std::atomic<int> refused{0};
    std::thread t([&] {
      for (int i = 0; i < 200; ++i) {
        try {
          loop->call_soon_threadsafe([] {});
        } catch (const std::logic_error&) {
          ++refused;
        }
      }
    });
    loop->close();
    t.join();
    EXPECT_TRUE(loop->is_closed());
  }
}

}  // namespace
