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

#include "tulipa/executor.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"

namespace tulipa {

namespace detail {

// The way back to a loop for worker threads (src/executor/loop_gate.cpp): posts under a mutex that run()'s shutdown
// hook takes to close the gate, so no worker is still inside call_soon_threadsafe when the loop is destroyed.
class LoopGate;
// Loop thread: the loop's gate, created (with its shutdown hook) on first use.
std::shared_ptr<LoopGate> loop_gate(EventLoop& loop);
// Any thread: posts `fn` unless the gate is closed (or the loop refuses); false then, and `fn` was destroyed here.
bool post_through(LoopGate& gate, Callback fn) noexcept;

// What crosses the thread boundary. Created and destroyed on the loop thread; the worker only writes `value` /
// `error` before posting the delivery (the loop's threadsafe queue orders those writes before the read), and reads
// `cancelled`. The DoneNode (future completed) flips `cancelled` when the future was cancelled.
template <class R>
struct ExecutorBridge final : DoneNode, Pooled {
  explicit ExecutorBridge(EventLoop& loop)
      : future(loop), gate(loop_gate(loop)), loop_thread(std::this_thread::get_id()) {
    fn = [](DoneNode* self, FutureCore& core) noexcept {
      if (core.cancelled()) static_cast<ExecutorBridge*>(self)->cancelled.store(true, std::memory_order_relaxed);
    };
    future.state()->add_node(*this);
  }
  ~ExecutorBridge() {
    if (linked) future.state()->remove_node(*this);
  }
  ExecutorBridge(const ExecutorBridge&) = delete;
  ExecutorBridge& operator=(const ExecutorBridge&) = delete;

  // Loop thread: the job finished (ran == true) or was dropped unrun.
  void deliver(bool ran) noexcept {
    if (future.done()) return;  // cancelled meanwhile: the result is simply destroyed with the bridge
    try {
      if (!ran) {
        future.cancel("the executor dropped the work unrun");
      } else if (error) {
        future.set_exception(std::move(error));
      } else if constexpr (std::is_void_v<R>) {
        future.set_result();
      } else {
        future.set_result(std::move(*value));
      }
    } catch (...) {
      future.try_set_exception(std::current_exception());
    }
  }

  Future<R> future;
  std::shared_ptr<LoopGate> gate;
  std::atomic<bool> cancelled{false};
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value{};
  std::exception_ptr error;
  std::thread::id loop_thread;
};

// The callback that brings the bridge back: owns it, and frees it on the loop thread whether it runs or is dropped
// by a closing loop. Destroyed on another thread (call_soon_threadsafe threw: the loop is closed), it leaks it.
template <class R>
struct Delivery {
  ExecutorBridge<R>* bridge;
  bool ran;
  Delivery(ExecutorBridge<R>* b, bool r) noexcept : bridge(b), ran(r) {}
  Delivery(Delivery&& o) noexcept : bridge(std::exchange(o.bridge, nullptr)), ran(o.ran) {}
  ~Delivery() {
    if (bridge && std::this_thread::get_id() == bridge->loop_thread) delete bridge;
  }
  void operator()() noexcept { bridge->deliver(ran); }
};

template <class R>
void post_delivery(ExecutorBridge<R>* bridge, bool ran) noexcept {
  // Our own reference: once posted, the loop may free the bridge (and its reference) before post_through returns.
  std::shared_ptr<LoopGate> gate = bridge->gate;
  post_through(*gate, Delivery<R>(bridge, ran));  // refused: the loop is gone and the bridge is leaked (see top)
}

// The job the executor runs. If it is destroyed without having run, it still reports back (as "dropped").
template <class R, class F, class... Args>
struct ExecutorJob {
  ExecutorBridge<R>* bridge;
  F fn;
  std::tuple<Args...> args;

  ExecutorJob(ExecutorBridge<R>* b, F f, std::tuple<Args...> a) : bridge(b), fn(std::move(f)), args(std::move(a)) {}
  ExecutorJob(ExecutorJob&& o) noexcept(std::is_nothrow_move_constructible_v<F> &&
                                        std::is_nothrow_move_constructible_v<std::tuple<Args...>>)
      : bridge(std::exchange(o.bridge, nullptr)), fn(std::move(o.fn)), args(std::move(o.args)) {}
  ~ExecutorJob() {
    if (bridge) post_delivery(bridge, false);
  }
  void operator()() {
    ExecutorBridge<R>* b = std::exchange(bridge, nullptr);
    if (!b->cancelled.load(std::memory_order_relaxed)) {
      try {
        if constexpr (std::is_void_v<R>) {
          std::apply(fn, std::move(args));
        } else {
          b->value.emplace(std::apply(fn, std::move(args)));
        }
      } catch (...) {
        b->error = std::current_exception();
      }
    }
    post_delivery(b, true);
  }
};

}  // namespace detail

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
