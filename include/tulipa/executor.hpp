// ThreadPoolExecutor: a bounded pool of named worker threads for blocking work (concurrent.futures'
// ThreadPoolExecutor, which asyncio's run_in_executor and to_thread use), and each loop's default executor.
//
// Usable without coroutines: submit(Callback) runs the callable on a worker thread; nothing comes back. The
// coroutine-side helpers (run_in_executor, to_thread in tulipa/to_thread.hpp) build on it and deliver results to
// the loop with call_soon_threadsafe.
//
// Threads: workers start lazily, one per submit() that finds no idle worker, up to max_workers; they live until
// shutdown(). Each is named "<prefix>-<n>" (n from 1; Linux keeps 15 bytes, so the prefix is cut, never the
// number) and runs with every asynchronous signal blocked, so that process signals (SIGINT, SIGTERM, SIGCHLD...)
// reach the thread that runs the loop and never interrupt a worker's blocking call.
//
// Every member may be called from any thread, including from a worker (except shutdown(wait=true), see there).
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "tulipa/callback.hpp"
#include "tulipa/loop.hpp"

namespace tulipa {

class ThreadPoolExecutor;

// submit() after shutdown() (concurrent.futures raises RuntimeError("cannot schedule new futures after shutdown")).
class ExecutorShutDown : public std::runtime_error {
 public:
  ExecutorShutDown() : std::runtime_error("cannot schedule new work after the executor was shut down") {}
};

// An executor's exception handler (asyncio's loop.set_exception_handler shape, for the pool): called on the worker
// thread whose work threw, with the context (message and exception). No executor argument: a pool destroyed from
// one of its own workers lets that worker finish the queue after the object is gone (thread_pool.cpp). The handler
// may move from the context (its exception) to hand it to another thread, which may then be the exception's last
// owner (the default executor hands it to its loop that way); a handler taking `const ErrorContext&` fits too.
using ExecutorExceptionHandler = std::function<void(ErrorContext&)>;

struct ExecutorOptions {
  // 0 picks concurrent.futures' default: min(32, hardware threads + 4).
  std::size_t max_workers = 0;
  std::string thread_name_prefix = "tulipa-worker";
  // The exception handler to start with (see set_exception_handler); null: the default one.
  ExecutorExceptionHandler exception_handler{};
};

class ThreadPoolExecutor {
 public:
  ThreadPoolExecutor();
  explicit ThreadPoolExecutor(ExecutorOptions options);
  explicit ThreadPoolExecutor(std::size_t max_workers, std::string thread_name_prefix = "tulipa-worker");
  // shutdown(wait = true): queued work still runs, then every worker is joined.
  ~ThreadPoolExecutor();
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  // Queues `work` to run on a worker thread, in submission order (FIFO; with several workers, items may of course
  // finish in any order). Throws ExecutorShutDown after shutdown(), std::system_error if a thread cannot be started
  // and no worker exists to take the work. The callable's captures are destroyed on the worker after it ran (or, when
  // shutdown(cancel_pending = true) drops it, on the thread calling shutdown).
  void submit(Callback work);

  // Refuses new work from now on. With cancel_pending, work still queued is destroyed without running (its
  // destructor is how the owner learns: run_in_executor's pending awaits see CancelledError). With wait, returns
  // once every worker has finished and been joined; throws std::logic_error if called with wait from one of this
  // pool's own workers (it would join itself). Without wait, workers finish the queue and exit on their own; the
  // destructor joins them. Idempotent.
  void shutdown(bool wait = true, bool cancel_pending = false);

  bool is_shutdown() const noexcept;
  std::size_t max_workers() const noexcept;
  // Workers started so far (they are started lazily, never more than max_workers).
  std::size_t thread_count() const noexcept;
  // Workers waiting for work.
  std::size_t idle_workers() const noexcept;
  // Work queued and not yet taken by a worker.
  std::size_t pending() const noexcept;
  // True when called from one of this pool's worker threads.
  bool in_worker_thread() const noexcept;

  // --- errors (asyncio's loop exception handler API, for the pool). An exception that escapes submitted work never
  // kills its worker: the worker calls call_exception_handler() with the message "Exception in work run by <its
  // thread's name>" and the exception, and goes on. run_in_executor's and to_thread's work never throws here (it
  // catches for its awaiter). A loop's default executor has a handler that forwards to the loop's exception handler,
  // on the loop's thread.
  // Any thread; null restores the default. A worker calling the handler meanwhile finishes with the previous one.
  void set_exception_handler(ExecutorExceptionHandler handler);
  // A copy of the handler set (null: the default), as another thread may replace it meanwhile.
  ExecutorExceptionHandler get_exception_handler() const;
  // Writes the context to stderr, "tulipa: <message>: <what()>" (the loop's default report, without a loop).
  static void default_exception_handler(const ErrorContext& context) noexcept;
  // Calls the handler set, else the default one. An exception the handler throws is reported by the default
  // handler, then the context itself.
  void call_exception_handler(ErrorContext context) noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;  // shared with the workers (see thread_pool.cpp)
};

// --- the loop's default executor (asyncio: loop.run_in_executor(None, ...), loop.set_default_executor,
// loop.shutdown_default_executor). Kept on the loop (a LoopExtension); loop thread only.
//
// default_executor(loop): the loop's executor, created on first use (ExecutorOptions defaults, except that an
// exception escaping submitted work goes to the loop's exception handler, on the loop's thread). Throws
// std::logic_error if the loop is closed. Call it on the loop's thread: creating (or setting) a default executor
// registers a shutdown hook with the loop (runner.hpp) so that tulipa::run() shuts it down and joins its threads
// before closing the loop, as asyncio.run does, while the loop keeps running. Shared, so that set_default_executor
// cannot pull it from under a caller that is submitting to it.
std::shared_ptr<ThreadPoolExecutor> default_executor(EventLoop& loop);
// Replaces the default executor (the previous one is shut down with wait if this was its last owner).
void set_default_executor(EventLoop& loop, std::shared_ptr<ThreadPoolExecutor> executor);
// Shuts the default executor down (queued work still runs), joins its threads, and forgets it, so a later
// default_executor(loop) makes a fresh one. run() does this through its shutdown hook; a loop driven by hand and
// closed without it shuts the executor down without waiting (as asyncio's loop.close()), and its threads are
// joined when the loop is destroyed. Blocks the calling thread while work still runs.
// Returns whether an executor existed.
bool shutdown_default_executor(EventLoop& loop);

}  // namespace tulipa
