// One loop per core: LoopGroup runs n event loops, each on a thread of its own (pinned to a CPU where asked), and
// run_per_core() is the blocking form a server's main() calls.
//
//   tulipa::run_per_core(2, [](tulipa::EventLoop& loop, std::size_t index) {
//     ServerOptions o;
//     o.reuse_port = true;  // each loop listens on the same port; the kernel spreads the connections
//     servers[index] = tulipa::create_server(loop, factory, "127.0.0.1", 8080, o);
//   });
//
// Threads: each loop is made, run and destroyed on its own thread, so everything of a loop (its ring, its pools, its
// per-thread caches) belongs to that thread alone. `main(loop, index)` runs on the loop's thread as its first
// callback. Work for another loop goes through that loop's call_soon_threadsafe() or, typed and without allocating,
// through a Mailbox<T> (mailbox.hpp).
//
// Shutdown: stop() (from any thread, any loop's callback, or a signal handler on one of the loops) stops every loop;
// each thread then runs `on_stop(loop, index)` when given (close servers, abort clients), runs its loop until nothing
// is ready, closes it and exits. join() (and the destructor) waits for every thread. An exception escaping `main`
// goes to that loop's exception handler, as any callback's does.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "tulipa/loop.hpp"

namespace tulipa {

struct LoopGroupOptions {
  LoopBackend backend = LoopBackend::automatic;  // every loop's backend (LoopOptions::backend)
  // Pin loop i to CPU (i mod the CPUs this process may use). Off by default: on a machine shared with other work
  // (or with the load generator, in a benchmark) the scheduler places threads better than a fixed pinning.
  bool pin = false;
  // Runs on each loop's thread once stop() was called, before the loop's last pass: close servers there.
  std::function<void(EventLoop&, std::size_t)> on_stop;
  // SIGINT and SIGTERM stop the group (handled on loop 0). run_per_core() sets it.
  bool stop_on_signals = false;
};

class LoopGroup {
 public:
  using Main = std::function<void(EventLoop&, std::size_t index)>;

  // Starts n >= 1 threads and returns once every loop exists (loop(i) is valid then) and runs `main`.
  // Throws std::invalid_argument for n == 0, std::system_error when a thread cannot start (the ones started are
  // stopped and joined first).
  LoopGroup(std::size_t n, Main main, LoopGroupOptions options = {});
  // stop() then join().
  ~LoopGroup();
  LoopGroup(const LoopGroup&) = delete;
  LoopGroup& operator=(const LoopGroup&) = delete;

  std::size_t size() const noexcept;
  // Loop i: valid until join() returned. Only call_soon_threadsafe()/stop_threadsafe() may be called on it from
  // another thread.
  EventLoop& loop(std::size_t i) noexcept;
  // Stops every loop (from any thread; idempotent).
  void stop() noexcept;
  // Waits until every thread ended. Call it from outside the group's threads.
  void join() noexcept;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// The number of CPUs this process may run on (sched_getaffinity), at least 1.
std::size_t available_cores() noexcept;

// Runs n loops (0: available_cores()) until SIGINT or SIGTERM arrives (handled on loop 0), then stops them all and
// joins. `main` runs on each loop as its first callback. A program that stops for other reasons uses LoopGroup.
void run_per_core(std::size_t n, LoopGroup::Main main, LoopGroupOptions options = {});

}  // namespace tulipa
