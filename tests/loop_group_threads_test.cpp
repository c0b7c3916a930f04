// LoopGroup, run_per_core and Mailbox: n loops on n threads, SO_REUSEPORT servers on each, typed cross-loop messages
// without allocation, and a shutdown that stops and joins.
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tulipa/loop_group.hpp"
#include "tulipa/mailbox.hpp"
#include "tulipa/net.hpp"

// Counts allocations on the threads that turn `counting` on, to check that sending through a Mailbox allocates
// nothing in steady state.
namespace {
thread_local bool counting = false;
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (counting) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace tulipa {
namespace {

TEST(LoopGroup, RunsMainOnEachLoopsOwnThreadThenStopsAndJoins) {
  constexpr std::size_t n = 3;
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::set<std::size_t> indexes;
  std::atomic<int> stopped{0};
  std::atomic<int> mains{0};
  LoopGroupOptions options;
  options.on_stop = [&](EventLoop& loop, std::size_t) {
    EXPECT_EQ(running_loop(), nullptr);  // between the passes, on the loop's thread
    (void)loop;
    stopped.fetch_add(1);
  };
  {
    LoopGroup group(
        n,
        [&](EventLoop& loop, std::size_t index) {
          EXPECT_EQ(running_loop(), &loop);
          std::lock_guard lock(mu);
          threads.insert(std::this_thread::get_id());
          indexes.insert(index);
          mains.fetch_add(1);
        },
        std::move(options));
    EXPECT_EQ(group.size(), n);
    // Wait (without sleeping) until every main ran: each loop answers a threadsafe call after its first callback.
    for (std::size_t i = 0; i < n; ++i) {
      std::atomic<bool> answered{false};
      group.loop(i).call_soon_threadsafe([&] {
        answered.store(true);
        answered.notify_one();
      });
      answered.wait(false);
    }
    EXPECT_EQ(mains.load(), int(n));
    group.stop();
    group.join();
  }
  EXPECT_EQ(stopped.load(), int(n));
  EXPECT_EQ(threads.size(), n);
  EXPECT_FALSE(threads.count(std::this_thread::get_id()));
  EXPECT_EQ(indexes, (std::set<std::size_t>{0, 1, 2}));
}

TEST(LoopGroup, ALoopStoppingItselfDoesNotEndTheGroup) {
  std::atomic<int> passes{0};
  LoopGroup group(2, [&](EventLoop& loop, std::size_t) {
    loop.stop();  // its own stop: run_forever returns and the group runs it again
    loop.call_soon([&] { passes.fetch_add(1); });
  });
  for (std::size_t i = 0; i < group.size(); ++i) {
    std::atomic<bool> answered{false};
    group.loop(i).call_soon_threadsafe([&] {
      answered.store(true);
      answered.notify_one();
    });
    answered.wait(false);
  }
  EXPECT_EQ(passes.load(), 2);
}  // the destructor stops and joins

TEST(LoopGroup, ZeroLoopsIsInvalid) {
  EXPECT_THROW(LoopGroup(0, [](EventLoop&, std::size_t) {}), std::invalid_argument);
  EXPECT_GE(available_cores(), 1u);
}

TEST(LoopGroup, PinnedLoopsRunOnOneCpuEach) {
  std::atomic<int> single{0};
  LoopGroupOptions options;
  options.pin = true;
  {
    LoopGroup group(
        2,
        [&](EventLoop&, std::size_t) {
          cpu_set_t set;
          CPU_ZERO(&set);
          ASSERT_EQ(::pthread_getaffinity_np(::pthread_self(), sizeof set, &set), 0);
          if (CPU_COUNT(&set) == 1) single.fetch_add(1);
        },
        std::move(options));
    for (std::size_t i = 0; i < group.size(); ++i) {
      std::atomic<bool> answered{false};
      group.loop(i).call_soon_threadsafe([&] {
        answered.store(true);
        answered.notify_one();
      });
      answered.wait(false);
    }
  }
  EXPECT_EQ(single.load(), 2);
}

// A message between loops: two words, moved, no heap.
struct Hop {
  std::uint32_t from;
  std::uint64_t value;
};

TEST(Mailbox, LoopsSendTypedMessagesToEachOtherInOrderWithoutAllocating) {
  constexpr std::size_t n = 2;
  constexpr std::uint64_t per_sender = 20000;
  struct Box {
    std::unique_ptr<Mailbox<Hop>> box;
    std::uint64_t received = 0;
    std::uint64_t next_expected = 0;  // from the other loop, in its order
    bool in_order = true;
    long allocs_while_sending = 0;
  };
  std::vector<Box> boxes(n);
  std::atomic<int> done{0};
  LoopGroup group(n, [&](EventLoop& loop, std::size_t index) {
    boxes[index].box = std::make_unique<Mailbox<Hop>>(loop, 256, [&, index](Hop&& hop) {
      Box& b = boxes[index];
      if (hop.value != b.next_expected) b.in_order = false;
      b.next_expected = hop.value + 1;
      if (++b.received == per_sender) {
        done.fetch_add(1);
        done.notify_all();
      }
      (void)loop;
    });
  });
  // Every box exists once each loop ran its main.
  for (std::size_t i = 0; i < n; ++i) {
    std::atomic<bool> answered{false};
    group.loop(i).call_soon_threadsafe([&] {
      answered.store(true);
      answered.notify_one();
    });
    answered.wait(false);
  }
  // Each loop sends to the other from a callback that re-schedules itself while the peer's box is full.
  struct Sender {
    EventLoop& loop;
    Mailbox<Hop>& peer;
    std::uint32_t from;
    long& allocs;
    std::uint64_t sent = 0;
    void step() {
      counting = sent > 1000;  // after warm-up: the loops' queues have their capacity
      long before = allocations.load();
      while (sent < per_sender && peer.try_send(Hop{from, sent})) ++sent;
      if (counting) allocs += allocations.load() - before;
      counting = false;
      if (sent < per_sender) loop.call_soon([this] { step(); });
    }
  };
  std::vector<std::unique_ptr<Sender>> senders;
  for (std::size_t i = 0; i < n; ++i)
    senders.push_back(std::make_unique<Sender>(
        Sender{group.loop(i), *boxes[(i + 1) % n].box, std::uint32_t(i), boxes[i].allocs_while_sending}));
  for (std::size_t i = 0; i < n; ++i) group.loop(i).call_soon_threadsafe([s = senders[i].get()] { s->step(); });
  while (done.load() < int(n)) done.wait(done.load());
  group.stop();
  group.join();
  for (auto& b : boxes) {
    EXPECT_EQ(b.received, per_sender);
    EXPECT_TRUE(b.in_order);
  }
  // allocations counts every thread's counted allocations: the senders' own (none) and nothing else counts.
  EXPECT_EQ(boxes[0].allocs_while_sending + boxes[1].allocs_while_sending, 0);
  for (auto& b : boxes) b.box.reset();
}

TEST(Mailbox, FullBoxRefusesAndKeepsTheValue) {
  EventLoop loop;
  std::vector<int> got;
  Mailbox<std::unique_ptr<int>> box(loop, 2, [&](std::unique_ptr<int>&& p) { got.push_back(*p); });
  EXPECT_EQ(box.capacity(), 2u);
  EXPECT_TRUE(box.try_send(std::make_unique<int>(1)));
  EXPECT_TRUE(box.try_send(std::make_unique<int>(2)));
  auto third = std::make_unique<int>(3);
  EXPECT_FALSE(box.try_send(std::move(third)));
  ASSERT_NE(third, nullptr);  // untouched
  loop.call_soon([&] { loop.call_soon([&] { loop.stop(); }); });
  loop.run_forever();
  EXPECT_EQ(got, (std::vector<int>{1, 2}));
  EXPECT_TRUE(box.try_send(std::move(third)));
  loop.call_soon([&] { loop.call_soon([&] { loop.stop(); }); });
  loop.run_forever();
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(box.try_send(std::make_unique<int>(4)));  // left in the box: destroyed with it (no leak under ASan)
  loop.close();
}

// Echo protocol for the SO_REUSEPORT test: counts connections per loop.
class CountingEcho final : public Protocol {
 public:
  explicit CountingEcho(std::atomic<int>& count) : count_(count) {}
  void connection_made(Transport& t) override {
    transport_ = &t;
    count_.fetch_add(1);
  }
  void data_received(std::span<const std::byte> data) override { transport_->write(data); }

 private:
  std::atomic<int>& count_;
  Transport* transport_ = nullptr;
};

std::uint16_t free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

TEST(LoopGroup, EveryLoopListensOnTheSamePortWithReusePort) {
  constexpr std::size_t n = 2;
  const std::uint16_t port = free_port();
  std::vector<std::atomic<int>> counts(n);
  std::vector<std::optional<Server>> servers(n);
  std::atomic<int> listening{0};
  LoopGroupOptions options;
  options.on_stop = [&](EventLoop&, std::size_t i) {
    servers[i]->close();
    servers[i]->abort_clients();
    servers[i].reset();  // on its loop's thread, before the loop goes
  };
  LoopGroup group(
      n,
      [&](EventLoop& loop, std::size_t i) {
        ServerOptions o;
        o.reuse_port = true;
        servers[i].emplace(create_server(
            loop, [&counts, i] { return std::make_unique<CountingEcho>(counts[i]); }, "127.0.0.1", port, o));
        listening.fetch_add(1);
        listening.notify_all();
      },
      std::move(options));
  while (listening.load() < int(n)) listening.wait(listening.load());
  // Blocking clients from this thread: each echoes one byte. The kernel hashes connections over the listeners.
  int echoed = 0;
  for (int c = 0; c < 64; ++c) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    char byte = 'x';
    ASSERT_EQ(::write(s, &byte, 1), 1);
    char back = 0;
    if (::read(s, &back, 1) == 1 && back == 'x') ++echoed;
    ::close(s);
  }
  group.stop();
  group.join();
  EXPECT_EQ(echoed, 64);
  EXPECT_EQ(counts[0].load() + counts[1].load(), 64);
  // Both listeners took connections (64 connections from distinct ports: all on one of two listeners would take
  // a hash that ignores the port).
  EXPECT_GT(counts[0].load(), 0);
  EXPECT_GT(counts[1].load(), 0);
}

TEST(RunPerCore, StopsOnSigterm) {
  std::atomic<int> started{0};
  std::thread runner([&] {
    run_per_core(2, [&](EventLoop&, std::size_t) {
      started.fetch_add(1);
      started.notify_all();
    });
  });
  while (started.load() < 2) started.wait(started.load());
  // The handler is installed on loop 0 before its main runs; raise once it is there.
  ::kill(::getpid(), SIGTERM);
  runner.join();
  EXPECT_EQ(started.load(), 2);
}

}  // namespace
}  // namespace tulipa
