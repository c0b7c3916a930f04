// Internals of tulipa/to_thread.hpp (the library's, not part of the contract).
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

namespace tulipa::detail {

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
    FutureAccess::state(future)->add_node(*this);
  }
  ~ExecutorBridge() {
    if (linked) FutureAccess::state(future)->remove_node(*this);
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

}  // namespace tulipa::detail
