// run() and run_until_complete(): asyncio.run and loop.run_until_complete.
//
//   int main() { return tulipa::run(main_coro()); }
//
// run(coro) makes a fresh loop, runs `coro` as the main task until it finishes, then (as asyncio.run does) cancels
// every task still alive and runs the loop until they finished (at most RunOptions::shutdown_timeout), reports those
// that ended with an exception through the exception handler, tears down any that refused to finish (close_tasks),
// runs the shutdown hooks, shuts the default executor down, and closes the loop. It returns the main coroutine's result
// or rethrows its exception. It throws std::logic_error when a loop is already running on this thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "tulipa/clock.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/selector.hpp"
#include "tulipa/task.hpp"

namespace tulipa {

struct RunOptions {
  std::unique_ptr<Selector> selector{};  // null: the default selector
  Clock* clock = nullptr;                // null: the monotonic clock (tests pass a VirtualClock); not owned
  std::optional<bool> debug{};           // nullopt: TULIPA_DEBUG from the environment
  // How long run() lets the tasks left after the main one handle their cancellation before tearing them down
  // (asyncio waits forever, so one task that refuses to stop hangs asyncio.run).
  Duration shutdown_timeout = std::chrono::seconds(30);
};

// Runs the loop until `fut` is done and returns its result (or rethrows). A coroutine is wrapped in a task first.
// Throws std::runtime_error if the loop stopped (stop()) before the future was done, std::invalid_argument at once
// if `fut` belongs to another loop.
template <class T>
T run_until_complete(EventLoop& loop, Future<T> fut);
template <class T>
T run_until_complete(EventLoop& loop, Coro<T> coro) {
  return run_until_complete(loop, Future<T>(create_task(loop, std::move(coro))));
}

// Cancels every unfinished task of `loop` and runs the loop until they are done or `timeout` passed; reports those
// that ended with an exception other than CancelledError. Returns how many are still unfinished (run() then tears
// them down with close_tasks, which reports each).
std::size_t cancel_all_tasks(EventLoop& loop, Duration timeout = std::chrono::seconds(30));

// A coroutine run() awaits before closing the loop (asyncio's shutdown_default_executor, shutdown_asyncgens).
// Hooks run in registration order, each once; they are forgotten when they ran.
void add_shutdown_hook(EventLoop& loop, std::function<Coro<void>()> hook);
// Runs and clears the hooks (run() calls it; call it yourself when you close a loop you drove by hand).
void run_shutdown_hooks(EventLoop& loop);

template <class T>
T run(Coro<T> main, RunOptions options = {});

namespace detail {
void check_not_running_here();
void finish_run(EventLoop& loop, Duration shutdown_timeout) noexcept;
}  // namespace detail

template <class T>
T run_until_complete(EventLoop& loop, Future<T> fut) {
  if (&fut.get_loop() != &loop) {
    throw std::invalid_argument("run_until_complete: the future belongs to a different loop than the one given");
  }
  if (!fut.done()) {
    // The stop callback goes when this returns, for any reason (a stop() from elsewhere, an exception): left
    // behind, it would stop a later, unrelated run of the loop.
    struct Remove {
      Future<T>& fut;
      CallbackId id;
      ~Remove() { fut.remove_done_callback(id); }
    } remove{fut, fut.add_done_callback([&loop] { loop.stop(); })};
    loop.run_forever();
    if (!fut.done()) throw std::runtime_error("tulipa: event loop stopped before the future completed");
  }
  return fut.share_result();
}

template <class T>
T run(Coro<T> main, RunOptions options) {
  detail::check_not_running_here();
  LoopOptions lo;
  lo.selector = std::move(options.selector);
  lo.clock = options.clock;
  bool debug = options.debug.value_or(false);
  if (options.debug) lo.debug = &debug;
  EventLoop loop(std::move(lo));
  Task<T> task = create_task(loop, std::move(main), "main");
  struct Finish {  // asyncio.run's finally: cancel what is left, shutdown hooks, close
    EventLoop& loop;
    Duration grace;
    ~Finish() { detail::finish_run(loop, grace); }
  } finish{loop, options.shutdown_timeout};
  return run_until_complete(loop, Future<T>(std::move(task)));
}

}  // namespace tulipa
