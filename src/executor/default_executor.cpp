// Each loop's default executor, kept on the loop as a LoopExtension. run() joins it through a shutdown hook while
// the loop still runs (results workers deliver meanwhile are processed); a loop closed by hand shuts it down in
// close() as asyncio's loop.close() does (shutdown(wait=false): queued work is dropped by nobody, running work
// finishes, its results are refused by the closed loop; the threads are joined when the loop is destroyed).
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "loop/error_context.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/executor.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"

namespace tulipa {

namespace {

struct DefaultExecutor final : LoopExtension {
  std::shared_ptr<ThreadPoolExecutor> executor;
  bool hook_registered = false;
  void on_close(EventLoop&) noexcept override {
    if (!executor) return;
    try {
      executor->shutdown(false);
    } catch (...) {
    }
  }
};

std::shared_ptr<ThreadPoolExecutor> take(EventLoop& loop) {
  auto* ext = loop.find_extension<DefaultExecutor>();
  return ext ? std::exchange(ext->executor, nullptr) : nullptr;
}

// run()'s shutdown hook (asyncio's loop.shutdown_default_executor): the joins happen on a helper thread while the
// loop keeps running, so results the workers still deliver with call_soon_threadsafe are processed meanwhile.
Coro<void> shutdown_default_executor_hook(EventLoop& loop) {
  auto executor = take(loop);
  if (!executor) co_return;
  Future<void> joined(loop);
  std::thread joiner([executor, &loop, f = joined]() mutable {
    executor->shutdown(true);
    // `f` moves into the callback: its count is only touched on the loop thread.
    loop.call_soon_threadsafe([f = std::move(f)]() mutable { f.try_set_result(); });
  });
  co_await joined;
  joiner.join();
}

// An exception that escaped work submitted to the default executor (not through run_in_executor, which hands
// errors to its caller): the loop's exception handler reports it, on the loop's thread, as everything else the
// loop reports. The loop outlives its default executor's workers (they are joined before it is destroyed); once it
// is closed, nothing runs there any more and the line goes to stderr. The exception moves on to the loop's thread,
// which may then be its last owner (see ExecutorExceptionHandler).
void report_on_loop(EventLoop& loop, ErrorContext& context) noexcept {
  try {
    std::exception_ptr e = std::move(context.exception);
    loop.call_soon_threadsafe([&loop, e = std::move(e)] {
      loop.call_exception_handler(detail::error_context("Exception in work submitted to the default executor", e));
    });
    return;
  } catch (...) {
  }
  std::fputs("tulipa: exception escaped work submitted to a closed loop's default executor\n", stderr);
}

void install(EventLoop& loop, std::shared_ptr<ThreadPoolExecutor> executor) {
  auto& ext = loop.extension<DefaultExecutor>();
  ext.executor = std::move(executor);
  if (!ext.hook_registered) {
    ext.hook_registered = true;
    add_shutdown_hook(loop, [&loop] { return shutdown_default_executor_hook(loop); });
  }
}

}  // namespace

std::shared_ptr<ThreadPoolExecutor> default_executor(EventLoop& loop) {
  if (loop.is_closed()) throw std::logic_error("default_executor: the event loop is closed");
  if (auto* ext = loop.find_extension<DefaultExecutor>(); ext && ext->executor) return ext->executor;
  ExecutorOptions options;
  options.exception_handler = [&loop](ErrorContext& context) { report_on_loop(loop, context); };
  auto executor = std::make_shared<ThreadPoolExecutor>(std::move(options));
  install(loop, executor);
  return executor;
}

void set_default_executor(EventLoop& loop, std::shared_ptr<ThreadPoolExecutor> executor) {
  if (!executor) throw std::invalid_argument("set_default_executor: null executor");
  std::shared_ptr<ThreadPoolExecutor> previous = take(loop);  // released after: its destructor may join threads
  install(loop, std::move(executor));
}

bool shutdown_default_executor(EventLoop& loop) {
  auto executor = take(loop);
  if (!executor) return false;
  executor->shutdown(true);
  return true;
}

}  // namespace tulipa
