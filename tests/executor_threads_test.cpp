// ThreadPoolExecutor (without coroutines), the per-loop default executor, and the DNS pool. Runs under TSan.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <netdb.h>
#include <sys/socket.h>

#include "tulipa/dns.hpp"
#include "tulipa/executor.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"
#include "tulipa/to_thread.hpp"

using tulipa::CancelledError;
using tulipa::Coro;
using tulipa::EventLoop;
using tulipa::ExecutorOptions;
using tulipa::ThreadPoolExecutor;

namespace {

// A gate the test opens by hand: work blocks on it, so the test controls when workers are busy.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

std::string current_thread_name() {
  char name[32] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

TEST(ThreadPoolExecutor, RunsWorkOnANamedWorkerThread) {
  ThreadPoolExecutor pool(2);
  std::promise<std::pair<std::thread::id, std::string>> where;
  pool.submit([&] { where.set_value({std::this_thread::get_id(), current_thread_name()}); });
  auto [id, name] = where.get_future().get();
  EXPECT_NE(id, std::this_thread::get_id());
  EXPECT_EQ(name, "tulipa-worker-1");
}

TEST(ThreadPoolExecutor, LongPrefixesAreCutButTheNumberIsKept) {
  ThreadPoolExecutor pool(ExecutorOptions{1, "a-very-long-thread-prefix", nullptr});
  std::promise<std::string> name;
  pool.submit([&] { name.set_value(current_thread_name()); });
  EXPECT_EQ(name.get_future().get(), "a-very-long-t-1");
}

TEST(ThreadPoolExecutor, DefaultSizeFollowsConcurrentFutures) {
  ThreadPoolExecutor pool;
  std::size_t expected = std::min<std::size_t>(32, std::max(1u, std::thread::hardware_concurrency()) + 4);
  EXPECT_EQ(pool.max_workers(), expected);
  EXPECT_EQ(pool.thread_count(), 0u);  // lazily started
}

TEST(ThreadPoolExecutor, StartsThreadsLazilyAndNeverMoreThanMaxWorkers) {
  ThreadPoolExecutor pool(3);
  EXPECT_EQ(pool.thread_count(), 0u);
  Gate gate;
  std::latch started(3);
  std::atomic<int> done{0};
  for (int i = 0; i < 10; ++i) {
    pool.submit([&] {
      started.count_down();
      gate.wait();
      ++done;
    });
  }
  started.wait();  // three workers are busy: the other seven items wait in the queue
  EXPECT_EQ(pool.thread_count(), 3u);
  EXPECT_EQ(pool.pending(), 7u);
  gate.open();
  pool.shutdown(true);
  EXPECT_EQ(done.load(), 10);
  EXPECT_EQ(pool.thread_count(), 3u);
}

TEST(ThreadPoolExecutor, AnIdleWorkerIsReusedInsteadOfStartingAnother) {
  ThreadPoolExecutor pool(8);
  for (int i = 0; i < 50; ++i) {
    std::promise<void> done;
    pool.submit([&] { done.set_value(); });
    done.get_future().get();
    while (pool.idle_workers() != 1) std::this_thread::yield();  // the worker is back waiting for work
  }
  EXPECT_EQ(pool.thread_count(), 1u);
}

TEST(ThreadPoolExecutor, OneWorkerRunsWorkInSubmissionOrder) {
  ThreadPoolExecutor pool(1);
  std::vector<int> order;  // touched by the single worker only, read after the join
  for (int i = 0; i < 100; ++i) pool.submit([&order, i] { order.push_back(i); });
  pool.shutdown(true);
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(ThreadPoolExecutor, ShutdownRefusesNewWorkButFinishesQueuedWork) {
  ThreadPoolExecutor pool(1);
  Gate gate;
  std::atomic<int> ran{0};
  pool.submit([&] {
    gate.wait();
    ++ran;
  });
  for (int i = 0; i < 5; ++i) pool.submit([&] { ++ran; });
  std::thread opener([&] { gate.open(); });
  pool.shutdown(true);
  opener.join();
  EXPECT_EQ(ran.load(), 6);
  EXPECT_TRUE(pool.is_shutdown());
  EXPECT_THROW(pool.submit([] {}), tulipa::ExecutorShutDown);
  pool.shutdown(true);  // idempotent
}

TEST(ThreadPoolExecutor, ShutdownWithCancelPendingDestroysQueuedWorkUnrun) {
  ThreadPoolExecutor pool(1);
  Gate gate;
  std::latch busy(1);
  pool.submit([&] {
    busy.count_down();
    gate.wait();
  });
  busy.wait();
  // The owner of dropped work learns through the destructor of its captures.
  struct Probe {
    std::atomic<int>* destroyed;
    std::atomic<int>* ran;
    Probe(std::atomic<int>* d, std::atomic<int>* r) : destroyed(d), ran(r) {}
    Probe(Probe&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)), ran(o.ran) {}
    ~Probe() {
      if (destroyed) ++*destroyed;
    }
    void operator()() { ++*ran; }
  };
  std::atomic<int> destroyed{0}, ran{0};
  for (int i = 0; i < 4; ++i) pool.submit(Probe(&destroyed, &ran));
  pool.shutdown(false, true);
  EXPECT_EQ(destroyed.load(), 4);
  gate.open();
  pool.shutdown(true);
  EXPECT_EQ(ran.load(), 0);
}

TEST(ThreadPoolExecutor, WorkersBlockAsynchronousSignals) {
  ThreadPoolExecutor pool(1);
  std::promise<std::pair<bool, bool>> masks;
  pool.submit([&] {
    sigset_t current;
    pthread_sigmask(SIG_BLOCK, nullptr, &current);
    bool async_blocked = sigismember(&current, SIGINT) == 1 && sigismember(&current, SIGTERM) == 1 &&
                         sigismember(&current, SIGCHLD) == 1 && sigismember(&current, SIGUSR1) == 1;
    bool faults_open = sigismember(&current, SIGSEGV) == 0 && sigismember(&current, SIGBUS) == 0;
    masks.set_value({async_blocked, faults_open});
  });
  auto [async_blocked, faults_open] = masks.get_future().get();
  EXPECT_TRUE(async_blocked);
  EXPECT_TRUE(faults_open);
  // ...and the submitting thread's mask is left as it was.
  sigset_t mine;
  pthread_sigmask(SIG_BLOCK, nullptr, &mine);
  EXPECT_EQ(sigismember(&mine, SIGINT), 0);
}

TEST(ThreadPoolExecutor, AnEscapingExceptionGoesToTheExceptionHandlerAndTheWorkerGoesOn) {
  std::mutex mu;
  std::vector<std::string> reported;
  ExecutorOptions options;
  options.max_workers = 1;
  options.thread_name_prefix = "pool";
  options.exception_handler = [&](const tulipa::ErrorContext& ctx) {
    try {
      std::rethrow_exception(ctx.exception);
    } catch (const std::exception& ex) {
      std::lock_guard lock(mu);
      reported.push_back(ctx.message + " / " + ex.what());
    }
  };
  ThreadPoolExecutor pool(std::move(options));
  EXPECT_TRUE(pool.get_exception_handler());
  pool.submit([] { throw std::runtime_error("boom"); });
  std::promise<void> after;
  pool.submit([&] { after.set_value(); });
  after.get_future().get();
  pool.shutdown(true);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0], "Exception in work run by pool-1 / boom");
  EXPECT_EQ(pool.thread_count(), 1u);
}

TEST(ThreadPoolExecutor, WithoutAHandlerTheDefaultOneWritesToStderr) {
  ThreadPoolExecutor pool(1, "quiet");
  EXPECT_FALSE(pool.get_exception_handler());
  testing::internal::CaptureStderr();
  pool.submit([] { throw std::runtime_error("boom"); });
  pool.shutdown(true);  // joins the worker: its report is written
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "tulipa: Exception in work run by quiet-1: boom\n");
}

TEST(ThreadPoolExecutor, TheHandlerCanBeReplacedWhileWorkRunsAndReset) {
  ThreadPoolExecutor pool(1);
  std::promise<std::string> first, second;
  pool.set_exception_handler([&](tulipa::ErrorContext& ctx) {
    std::exception_ptr e = std::move(ctx.exception);  // a handler may take the exception (to hand it on)
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      first.set_value(ex.what());
    }
  });
  pool.submit([] { throw std::runtime_error("one"); });
  EXPECT_EQ(first.get_future().get(), "one");
  pool.set_exception_handler([&](const tulipa::ErrorContext&) { second.set_value("two"); });
  pool.submit([] { throw std::runtime_error("two"); });
  EXPECT_EQ(second.get_future().get(), "two");
  pool.set_exception_handler(nullptr);  // back to the default
  EXPECT_FALSE(pool.get_exception_handler());
}

TEST(ThreadPoolExecutor, AHandlerThatThrowsIsReportedByTheDefaultOne) {
  ThreadPoolExecutor pool(1, "broken");
  pool.set_exception_handler([](const tulipa::ErrorContext&) { throw std::logic_error("handler broke"); });
  testing::internal::CaptureStderr();
  pool.submit([] { throw std::runtime_error("boom"); });
  pool.shutdown(true);
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "tulipa: Unhandled error in exception handler: handler broke\n"
            "tulipa: Exception in work run by broken-1: boom\n");
}

TEST(ThreadPoolExecutor, CallExceptionHandlerReportsLikeAWorker) {
  ThreadPoolExecutor pool(1);
  std::string seen;
  pool.set_exception_handler([&](const tulipa::ErrorContext& ctx) { seen = ctx.message; });
  pool.call_exception_handler(tulipa::ErrorContext{.message = "by hand"});
  EXPECT_EQ(seen, "by hand");
}

TEST(ThreadPoolExecutor, SubmitRejectsAnEmptyCallable) {
  ThreadPoolExecutor pool(1);
  EXPECT_THROW(pool.submit(tulipa::Callback{}), std::invalid_argument);
}

TEST(ThreadPoolExecutor, ShutdownWithWaitFromAWorkerIsRefused) {
  ThreadPoolExecutor pool(1);
  std::promise<bool> refused;
  pool.submit([&] {
    try {
      pool.shutdown(true);
      refused.set_value(false);
    } catch (const std::logic_error&) {
      refused.set_value(true);
    }
  });
  EXPECT_TRUE(refused.get_future().get());
  EXPECT_FALSE(pool.in_worker_thread());
}

TEST(ThreadPoolExecutor, CanBeDestroyedByItsOwnWorker) {
  auto pool = std::make_shared<ThreadPoolExecutor>(2);
  std::promise<void> destroyed;
  std::latch second_running(1);
  Gate gate;
  pool->submit([&] {
    second_running.count_down();
    gate.wait();
  });
  second_running.wait();
  // The last owner lets go on a worker: the other worker is joined, this one runs out on its own.
  std::latch main_let_go(1);
  pool->submit([&, p = pool]() mutable {
    main_let_go.wait();
    gate.open();
    p.reset();
    destroyed.set_value();
  });
  pool.reset();
  main_let_go.count_down();
  destroyed.get_future().get();
}

TEST(ThreadPoolExecutor, ManyProducersManyWorkers) {
  ThreadPoolExecutor pool(4);
  constexpr int producers = 4, per_producer = 2000;
  std::atomic<int> ran{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&] {
      for (int i = 0; i < per_producer; ++i) pool.submit([&] { ran.fetch_add(1, std::memory_order_relaxed); });
    });
  }
  for (auto& t : threads) t.join();
  pool.shutdown(true);
  EXPECT_EQ(ran.load(), producers * per_producer);
  EXPECT_LE(pool.thread_count(), 4u);
}

// --- results reach the loop through call_soon_threadsafe

TEST(ThreadPoolExecutor, WorkDeliversResultsToTheLoop) {
  EventLoop loop;
  ThreadPoolExecutor pool(3);
  constexpr int jobs = 200;
  int delivered = 0;  // loop thread only
  long sum = 0;
  for (int i = 0; i < jobs; ++i) {
    pool.submit([&loop, &delivered, &sum, i] {
      long square = static_cast<long>(i) * i;  // the "blocking" work
      loop.call_soon_threadsafe([&loop, &delivered, &sum, square] {
        sum += square;
        if (++delivered == jobs) loop.stop();
      });
    });
  }
  loop.run_forever();
  EXPECT_EQ(delivered, jobs);
  EXPECT_EQ(sum, static_cast<long>(jobs - 1) * jobs * (2 * jobs - 1) / 6);
}

// --- the default executor registry

TEST(DefaultExecutor, OnePerLoopCreatedOnFirstUseAndForgottenAtShutdown) {
  EventLoop a, b;
  auto ea = tulipa::default_executor(a);
  EXPECT_EQ(tulipa::default_executor(a), ea);
  auto eb = tulipa::default_executor(b);
  EXPECT_NE(ea, eb);
  std::promise<std::string> name;
  ea->submit([&] { name.set_value(current_thread_name()); });
  EXPECT_EQ(name.get_future().get(), "tulipa-worker-1");

  EXPECT_TRUE(tulipa::shutdown_default_executor(a));
  EXPECT_TRUE(ea->is_shutdown());
  EXPECT_FALSE(tulipa::shutdown_default_executor(a));
  auto fresh = tulipa::default_executor(a);
  EXPECT_NE(fresh, ea);
  EXPECT_FALSE(fresh->is_shutdown());
  EXPECT_TRUE(tulipa::shutdown_default_executor(a));
  EXPECT_TRUE(tulipa::shutdown_default_executor(b));
}

TEST(DefaultExecutor, SetDefaultExecutorReplacesIt) {
  EventLoop loop;
  auto mine = std::make_shared<ThreadPoolExecutor>(ExecutorOptions{1, "mine", nullptr});
  tulipa::set_default_executor(loop, mine);
  EXPECT_EQ(tulipa::default_executor(loop), mine);
  EXPECT_THROW(tulipa::set_default_executor(loop, nullptr), std::invalid_argument);
  EXPECT_TRUE(tulipa::shutdown_default_executor(loop));
  EXPECT_TRUE(mine->is_shutdown());
}

TEST(DefaultExecutor, AnEscapingExceptionGoesToTheLoopsExceptionHandler) {
  EventLoop loop;
  std::vector<std::string> reported;
  loop.set_exception_handler([&](EventLoop& l, const tulipa::ErrorContext& ctx) {
    std::string line = ctx.message;
    try {
      std::rethrow_exception(ctx.exception);
    } catch (const std::exception& ex) {
      line += std::string(" / ") + ex.what();
    }
    reported.push_back(line);
    l.stop();
  });
  tulipa::default_executor(loop)->submit([] { throw std::runtime_error("boom"); });
  loop.run_forever();  // until the report arrives (the handler stops the loop)
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0], "Exception in work submitted to the default executor / boom");
  EXPECT_TRUE(tulipa::shutdown_default_executor(loop));
}

TEST(DefaultExecutor, AClosedLoopHasNone) {
  EventLoop loop;
  loop.close();
  EXPECT_THROW(tulipa::default_executor(loop), std::logic_error);
}

// --- run_in_executor / to_thread

TEST(ToThread, ReturnsTheResultComputedOnAWorker) {
  auto [value, name] = tulipa::run([]() -> Coro<std::pair<int, std::string>> {
    int v = co_await tulipa::to_thread([](int a, int b) { return a * b; }, 6, 7);
    std::string n = co_await tulipa::to_thread(current_thread_name);
    co_return std::pair{v, n};
  }());
  EXPECT_EQ(value, 42);
  EXPECT_EQ(name.rfind("tulipa-worker-", 0), 0u) << name;
}

TEST(ToThread, PropagatesTheExceptionToTheAwaiter) {
  tulipa::run([]() -> Coro<void> {
    bool caught = false;
    try {
      co_await tulipa::to_thread([] { throw std::out_of_range("from the worker"); });
    } catch (const std::out_of_range& e) {
      caught = std::string(e.what()) == "from the worker";
    }
    EXPECT_TRUE(caught);
  }());
}

TEST(ToThread, MoveOnlyArgumentsAndResults) {
  tulipa::run([]() -> Coro<void> {
    auto p = co_await tulipa::to_thread([](std::unique_ptr<int> in) { return std::make_unique<int>(*in + 1); },
                                        std::make_unique<int>(41));
    EXPECT_EQ(*p, 42);
  }());
}

TEST(ToThread, TheDefaultExecutorIsShutDownByRun) {
  std::shared_ptr<ThreadPoolExecutor> executor;
  tulipa::run([](std::shared_ptr<ThreadPoolExecutor>& out) -> Coro<void> {
    co_await tulipa::to_thread([] {});
    out = tulipa::default_executor(tulipa::get_running_loop());
  }(executor));
  ASSERT_TRUE(executor);
  EXPECT_TRUE(executor->is_shutdown());
  EXPECT_EQ(executor->thread_count(), 1u);
}

TEST(RunInExecutor, UsesTheGivenExecutorAndRefusesAShutDownOne) {
  tulipa::run([]() -> Coro<void> {
    ThreadPoolExecutor mine(ExecutorOptions{1, "mine", nullptr});
    std::string name = co_await tulipa::run_in_executor(&mine, current_thread_name);
    EXPECT_EQ(name, "mine-1");
    mine.shutdown(true);
    EXPECT_THROW((void)tulipa::run_in_executor(&mine, [] { return 1; }), tulipa::ExecutorShutDown);
  }());
}

// The result of a cancelled await: destroyed on the loop thread when it arrives, and counted.
struct Tracked {
  static inline std::atomic<int> live{0};
  tulipa::Event* destroyed = nullptr;  // set on the loop thread before the result can arrive
  std::thread::id* destroyed_on = nullptr;
  explicit Tracked(int) { ++live; }
  Tracked(Tracked&& o) noexcept : destroyed(o.destroyed), destroyed_on(o.destroyed_on) { ++live; }
  ~Tracked() {
    --live;
    if (destroyed && live == 0) {
      *destroyed_on = std::this_thread::get_id();
      destroyed->set();
    }
  }
};

TEST(ToThread, ACancelledAwaitDropsTheResultWithoutLeaking) {
  tulipa::run([]() -> Coro<void> {
    Gate gate;
    std::latch started(1);
    tulipa::Event destroyed;
    std::thread::id destroyed_on;
    tulipa::Future<Tracked> fut = tulipa::to_thread([&] {
      started.count_down();
      gate.wait();
      Tracked t(1);
      t.destroyed = &destroyed;
      t.destroyed_on = &destroyed_on;
      return t;
    });
    auto waiter =
        tulipa::create_task([](tulipa::Future<Tracked> f) -> Coro<void> { (void)co_await std::move(f); }(fut));
    co_await tulipa::sleep(std::chrono::nanoseconds(0));
    started.wait();  // the work is running on the worker: it cannot be stopped any more
    waiter.cancel();
    co_await tulipa::sleep(std::chrono::nanoseconds(0));
    co_await tulipa::sleep(std::chrono::nanoseconds(0));
    EXPECT_TRUE(waiter.done() && waiter.cancelled());  // the await ended at once, not when the work ends
    EXPECT_TRUE(fut.cancelled());
    gate.open();
    co_await destroyed.wait();  // the result arrived and was destroyed, on this thread
    EXPECT_EQ(destroyed_on, std::this_thread::get_id());
    EXPECT_EQ(Tracked::live.load(), 0);
  }());
}

TEST(RunInExecutor, CancelledBeforeItStartsTheWorkNeverRuns) {
  tulipa::run([]() -> Coro<void> {
    ThreadPoolExecutor one(1);
    Gate gate;
    std::latch busy(1);
    auto blocker = tulipa::run_in_executor(&one, [&] {
      busy.count_down();
      gate.wait();
    });
    busy.wait();
    std::atomic<bool> ran{false};
    auto skipped = tulipa::run_in_executor(&one, [&] { ran = true; });
    EXPECT_TRUE(skipped.cancel());
    gate.open();
    co_await blocker;
    co_await tulipa::run_in_executor(&one, [] {});  // FIFO on one worker: the skipped job was taken before this
    EXPECT_FALSE(ran.load());
    one.shutdown(true);
  }());
}

TEST(RunInExecutor, WorkDroppedByTheExecutorCancelsItsFuture) {
  tulipa::run([]() -> Coro<void> {
    ThreadPoolExecutor one(1);
    Gate gate;
    std::latch busy(1);
    auto blocker = tulipa::run_in_executor(&one, [&] {
      busy.count_down();
      gate.wait();
    });
    busy.wait();
    auto dropped = tulipa::run_in_executor(&one, [] { return 1; });
    one.shutdown(false, true);
    bool cancelled = false;
    try {
      (void)co_await dropped;
    } catch (const CancelledError&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    gate.open();
    co_await blocker;
  }());
}

// --- DNS on its own pool (no external network: "localhost" comes from the hosts file, the rest is numeric)

bool is_loopback(const tulipa::SocketAddress& a) { return a.host() == "127.0.0.1" || a.host() == "::1"; }

TEST(Dns, LocalhostResolvesToLoopbackOnTheDnsPool) {
  auto infos = tulipa::run([]() -> Coro<std::vector<tulipa::AddrInfo>> {
    tulipa::AddrInfoHints hints;
    hints.type = SOCK_STREAM;
    co_return co_await tulipa::getaddrinfo("localhost", 8080, hints);
  }());
  ASSERT_FALSE(infos.empty());
  for (const auto& ai : infos) {
    EXPECT_TRUE(is_loopback(ai.address)) << ai.address.to_string();
    EXPECT_EQ(ai.address.port(), 8080);
    EXPECT_EQ(ai.type, SOCK_STREAM);
  }
  EXPECT_EQ(tulipa::dns_executor().max_workers(), 4u);
  EXPECT_GE(tulipa::dns_executor().thread_count(), 1u);
}

TEST(Dns, NumericHostsAndNumericErrors) {
  tulipa::run([]() -> Coro<void> {
    tulipa::AddrInfoHints hints;
    hints.flags = AI_NUMERICHOST;
    hints.type = SOCK_DGRAM;
    auto v4 = co_await tulipa::getaddrinfo("127.0.0.1", "53", hints);
    EXPECT_EQ(v4.size(), 1u);
    EXPECT_EQ(v4.at(0).family, AF_INET);
    EXPECT_EQ(v4.at(0).address.to_string(), "127.0.0.1:53");
    auto v6 = co_await tulipa::getaddrinfo("::1", "443", hints);
    EXPECT_EQ(v6.at(0).family, AF_INET6);
    EXPECT_EQ(v6.at(0).address.to_string(), "[::1]:443");
    int code = 0;
    try {
      (void)co_await tulipa::getaddrinfo("not-a-number.invalid", "80", hints);
    } catch (const tulipa::GaiError& e) {
      code = e.code();
      EXPECT_NE(std::string(e.what()).find("not-a-number.invalid"), std::string::npos);
    }
    EXPECT_EQ(code, EAI_NONAME);
    auto name =
        co_await tulipa::getnameinfo(tulipa::SocketAddress::parse("127.0.0.1", 80), NI_NUMERICHOST | NI_NUMERICSERV);
    EXPECT_EQ(name.host, "127.0.0.1");
    EXPECT_EQ(name.service, "80");
  }());
}

TEST(Dns, ALookupCanBeCancelledWhileItWaits) {
  tulipa::run([]() -> Coro<void> {
    // Occupy the whole DNS pool so that the lookup below waits in its queue.
    // The pool is never joined: the workers share the gate and the latch, so that nothing dies under them.
    auto& dns = tulipa::dns_executor();
    auto gate = std::make_shared<Gate>();
    auto busy = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(dns.max_workers()));
    for (std::size_t i = 0; i < dns.max_workers(); ++i) {
      dns.submit([gate, busy] {
        busy->count_down();
        gate->wait();
      });
    }
    busy->wait();
    auto lookup = tulipa::create_task([]() -> Coro<std::size_t> {
      tulipa::AddrInfoHints hints;
      hints.flags = AI_NUMERICHOST;
      co_return (co_await tulipa::getaddrinfo("127.0.0.1", "1", hints)).size();
    }());
    co_await tulipa::sleep(std::chrono::nanoseconds(0));
    co_await tulipa::sleep(std::chrono::nanoseconds(0));
    EXPECT_FALSE(lookup.done());
    lookup.cancel();
    co_await tulipa::sleep(std::chrono::nanoseconds(0));
    co_await tulipa::sleep(std::chrono::nanoseconds(0));
    EXPECT_TRUE(lookup.done() && lookup.cancelled());
    gate->open();
    // The pool is usable again (the cancelled lookup is skipped when its turn comes).
    tulipa::AddrInfoHints hints;
    hints.flags = AI_NUMERICHOST;
    EXPECT_EQ((co_await tulipa::getaddrinfo("::1", "2", hints)).size() > 0, true);
  }());
}

TEST(Dns, LookupsDoNotWaitForABusyDefaultExecutor) {
  tulipa::run([]() -> Coro<void> {
    auto& loop = tulipa::get_running_loop();
    tulipa::set_default_executor(loop, std::make_shared<ThreadPoolExecutor>(1));
    Gate gate;
    std::latch busy(1);
    auto hog = tulipa::to_thread([&] {  // takes the default executor's only worker
      busy.count_down();
      gate.wait();
    });
    busy.wait();
    tulipa::AddrInfoHints hints;
    hints.flags = AI_NUMERICHOST;
    auto infos = co_await tulipa::getaddrinfo("127.0.0.1", "1", hints);  // would hang if it queued behind `hog`
    EXPECT_EQ(infos.size() > 0, true);
    gate.open();
    co_await hog;
  }());
}

}  // namespace
