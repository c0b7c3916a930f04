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

#include "tulipa/executor.hpp"
#include "tulipa/loop.hpp"

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
  }
  // Each item found the previous worker idle (or about to be): sequential work needs one thread, a race at most two.
  EXPECT_LE(pool.thread_count(), 2u);
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

TEST(ThreadPoolExecutor, AnEscapingExceptionIsReportedAndTheWorkerGoesOn) {
  std::mutex mu;
  std::vector<std::string> reported;
  ExecutorOptions options;
  options.max_workers = 1;
  options.on_uncaught = [&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::lock_guard lock(mu);
      reported.push_back(ex.what());
    }
  };
  ThreadPoolExecutor pool(std::move(options));
  pool.submit([] { throw std::runtime_error("boom"); });
  std::promise<void> after;
  pool.submit([&] { after.set_value(); });
  after.get_future().get();
  pool.shutdown(true);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0], "boom");
  EXPECT_EQ(pool.thread_count(), 1u);
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

TEST(DefaultExecutor, AClosedLoopHasNone) {
  EventLoop loop;
  loop.close();
  EXPECT_THROW(tulipa::default_executor(loop), std::logic_error);
}

}  // namespace
