// run_in_executor() and to_thread(): asyncio's loop.run_in_executor and asyncio.to_thread. Blocking work runs on a
// ThreadPoolExecutor; its result comes back to the loop as a Future.
//
//   std::string text = co_await tulipa::to_thread(read_whole_file, path);
//
// The callable and the arguments are decay-copied (moved when given as rvalues) into the job, as std::thread does,
// and destroyed on the worker after the call: pass values, not references to loop-thread objects.
//
// Cancellation (asyncio's semantics): cancelling the returned Future (or the task that awaits it, which cancels the
// future) resolves it as cancelled at once. Work that has not started yet is then skipped; work already running
// runs to its end on the worker (a thread cannot be interrupted), and its result or exception is destroyed on the
// loop thread when it arrives: nothing leaks and nothing is reported. Work the executor drops unrun
// (shutdown(cancel_pending = true)) cancels its future.
//
// Cost per call: one bridge object (future state, result slot) from the loop thread's frame allocator, the
// executor's queue slot (the job is a Callback: inline, no allocation, when the callable and its arguments fit in 40
// bytes), and one call_soon_threadsafe back carrying only a pointer (the result waits in the bridge).
//
// Threads: call both on the loop's thread. Results reach the loop through its "gate", which run()'s shutdown hooks
// close (after the default executor's workers were joined), so no worker is still posting when the loop is
// destroyed. A loop driven by hand must call run_shutdown_hooks(loop) before it is destroyed. A result that comes back
// after that cannot be delivered or touched from the worker; its bridge is leaked on purpose.
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <optional>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

#include "tulipa/detail/to_thread.hpp"
#include "tulipa/executor.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"

namespace tulipa {

// Runs fn(args...) on `executor` (null: the loop's default executor) and returns a Future of its result on `loop`.
// Throws ExecutorShutDown if the executor was shut down.
template <class F, class... Args>
auto run_in_executor(EventLoop& loop, ThreadPoolExecutor* executor, F&& fn, Args&&... args)
    -> Future<std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>...>> {
  using R = std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>...>;
  std::shared_ptr<ThreadPoolExecutor> keep;
  if (!executor) {
    keep = default_executor(loop);
    executor = keep.get();
  }
  auto* bridge = new detail::ExecutorBridge<R>(loop);
  Future<R> result = bridge->future;
  using Job = detail::ExecutorJob<R, std::decay_t<F>, std::decay_t<Args>...>;
  Job job(bridge, std::forward<F>(fn), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...));
  try {
    // Once the job is inside the Callback, a refusal (ExecutorShutDown) destroys it there, and its destructor
    // reports "dropped": the delivery cancels the future nobody holds and frees the bridge on this thread.
    executor->submit(std::move(job));
  } catch (...) {
    if (job.bridge) {  // the Callback could not even be built: the bridge never left
      job.bridge = nullptr;
      delete bridge;
    }
    throw;
  }
  return result;
}

// The same on the running loop (std::runtime_error when none runs on this thread).
template <class F, class... Args>
auto run_in_executor(ThreadPoolExecutor* executor, F&& fn, Args&&... args) {
  return run_in_executor(get_running_loop(), executor, std::forward<F>(fn), std::forward<Args>(args)...);
}

// asyncio.to_thread: fn(args...) on the running loop's default executor.
template <class F, class... Args>
auto to_thread(F&& fn, Args&&... args) {
  return run_in_executor(get_running_loop(), nullptr, std::forward<F>(fn), std::forward<Args>(args)...);
}

}  // namespace tulipa
