// LoopGroup: n threads, each making, running and destroying its own loop (include/tulipa/loop_group.hpp).
#include "tulipa/loop_group.hpp"

#include <pthread.h>
#include <sched.h>

#include <condition_variable>
#include <csignal>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace tulipa {

struct LoopGroup::State {
  struct Slot {
    std::thread thread;
    EventLoop* loop = nullptr;  // set while the loop exists and may be told to stop (under `mutex`)
  };

  Main main;
  LoopGroupOptions options;
  std::vector<Slot> slots;
  std::mutex mutex;
  std::condition_variable made;  // a loop was made (or failed to be)
  std::size_t started = 0;       // loops made or failed, under `mutex`
  std::exception_ptr failure;    // the first loop that could not be made
  bool stopping = false;         // under `mutex`

  void stop() noexcept {
    std::lock_guard lock(mutex);
    if (stopping) return;
    stopping = true;
    // Under the mutex: a thread clears its slot (before closing its loop) only after taking it, so every loop
    // named here is alive and open.
    for (Slot& s : slots) {
      if (s.loop == nullptr) continue;
      try {
        s.loop->stop_threadsafe();
      } catch (...) {  // bad_alloc queueing the stop: that loop is told through `stopping` at its next pass
      }
    }
  }

  bool is_stopping() {
    std::lock_guard lock(mutex);
    return stopping;
  }

  void pin(std::size_t index) noexcept {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    const int count = CPU_COUNT(&allowed);
    if (count <= 0) return;
    int wanted = int(index % std::size_t(count));
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &allowed)) continue;
      if (wanted-- == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        ::pthread_setaffinity_np(::pthread_self(), sizeof one, &one);
        return;
      }
    }
  }

  void run(std::size_t index) {
    std::optional<EventLoop> loop;
    try {
      LoopOptions o;
      o.backend = options.backend;
      loop.emplace(std::move(o));
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!failure) failure = std::current_exception();
      ++started;
      made.notify_all();
      return;
    }
    {
      std::lock_guard lock(mutex);
      slots[index].loop = &*loop;
      ++started;
      made.notify_all();
    }
    if (options.pin) pin(index);
    if (index == 0 && options.stop_on_signals) {
      loop->add_signal_handler(SIGINT, [this] { stop(); });
      loop->add_signal_handler(SIGTERM, [this] { stop(); });
    }
    loop->call_soon([this, index, &loop] { main(*loop, index); });
    // A loop stopped by its own code (loop.stop()) goes on running: only the group's stop ends it.
    while (!is_stopping()) loop->run_forever();
    if (options.on_stop) {
      try {
        options.on_stop(*loop, index);
      } catch (...) {
        ErrorContext ctx;
        ctx.message = "Exception in LoopGroup's on_stop";
        ctx.exception = std::current_exception();
        loop->call_exception_handler(ctx);
      }
    }
    // One more pass for what stopping scheduled (connection_lost of the connections on_stop aborted, say).
    loop->call_soon([&loop] { loop->stop(); });
    loop->run_forever();
    {
      std::lock_guard lock(mutex);
      slots[index].loop = nullptr;
    }
    loop->close();
  }
};

LoopGroup::LoopGroup(std::size_t n, Main main, LoopGroupOptions options) : state_(std::make_unique<State>()) {
  if (n == 0) throw std::invalid_argument("LoopGroup: at least one loop");
  if (!main) throw std::invalid_argument("LoopGroup: no main function");
  State& st = *state_;
  st.main = std::move(main);
  st.options = std::move(options);
  st.slots.resize(n);
  std::size_t launched = 0;
  try {
    for (; launched < n; ++launched) st.slots[launched].thread = std::thread([&st, launched] { st.run(launched); });
  } catch (...) {
    {
      std::unique_lock lock(st.mutex);
      st.made.wait(lock, [&] { return st.started == launched; });
    }
    stop();
    join();
    throw;
  }
  std::unique_lock lock(st.mutex);
  st.made.wait(lock, [&] { return st.started == n; });
  if (st.failure) {
    std::exception_ptr failure = st.failure;
    lock.unlock();
    stop();
    join();
    std::rethrow_exception(failure);
  }
}

LoopGroup::~LoopGroup() {
  stop();
  join();
}

std::size_t LoopGroup::size() const noexcept { return state_->slots.size(); }

EventLoop& LoopGroup::loop(std::size_t i) noexcept { return *state_->slots[i].loop; }

void LoopGroup::stop() noexcept { state_->stop(); }

void LoopGroup::join() noexcept {
  for (auto& s : state_->slots)
    if (s.thread.joinable()) s.thread.join();
}

std::size_t available_cores() noexcept {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 1;
  int count = CPU_COUNT(&allowed);
  return count > 0 ? std::size_t(count) : 1;
}

void run_per_core(std::size_t n, LoopGroup::Main main, LoopGroupOptions options) {
  options.stop_on_signals = true;
  LoopGroup group(n == 0 ? available_cores() : n, std::move(main), std::move(options));
  group.join();
}

}  // namespace tulipa
