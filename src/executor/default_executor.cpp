// Each loop's default executor, kept in a registry keyed by the loop's address so that EventLoop itself needs no
// hook. An entry is removed by shutdown_default_executor (tulipa::run calls it). A loop destroyed without it leaves
// its entry behind; a later loop at the same address then inherits a live, loop-agnostic pool, which is harmless
// (the pool knows nothing of loops: results reach a loop through the call_soon_threadsafe of the submitter).
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "tulipa/coro.hpp"
#include "tulipa/executor.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"

namespace tulipa {

namespace {

struct Registry {
  std::mutex mu;
  std::vector<std::pair<const EventLoop*, std::shared_ptr<ThreadPoolExecutor>>> entries;  // a handful of loops

  std::shared_ptr<ThreadPoolExecutor>* find(const EventLoop* loop) {
    for (auto& [l, e] : entries) {
      if (l == loop) return &e;
    }
    return nullptr;
  }
};

// Never destroyed: a worker may still be finishing when static destructors run at exit.
Registry& registry() {
  static auto* r = new Registry;
  return *r;
}

std::shared_ptr<ThreadPoolExecutor> take(const EventLoop& loop) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  for (auto it = r.entries.begin(); it != r.entries.end(); ++it) {
    if (it->first == &loop) {
      auto executor = std::move(it->second);
      r.entries.erase(it);
      return executor;
    }
  }
  return nullptr;
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

void register_hook(EventLoop& loop) {
  add_shutdown_hook(loop, [&loop] { return shutdown_default_executor_hook(loop); });
}

}  // namespace

std::shared_ptr<ThreadPoolExecutor> default_executor(EventLoop& loop) {
  if (loop.is_closed()) throw std::logic_error("default_executor: the event loop is closed");
  std::shared_ptr<ThreadPoolExecutor> executor;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    if (auto* e = r.find(&loop)) return *e;
    executor = std::make_shared<ThreadPoolExecutor>();
    r.entries.emplace_back(&loop, executor);
  }
  register_hook(loop);
  return executor;
}

void set_default_executor(EventLoop& loop, std::shared_ptr<ThreadPoolExecutor> executor) {
  if (!executor) throw std::invalid_argument("set_default_executor: null executor");
  std::shared_ptr<ThreadPoolExecutor> previous;  // released outside the lock: its destructor may join threads
  {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    if (auto* e = r.find(&loop)) {
      previous = std::exchange(*e, std::move(executor));
      return;  // its shutdown hook is registered already
    }
    r.entries.emplace_back(&loop, std::move(executor));
  }
  register_hook(loop);
}

bool shutdown_default_executor(EventLoop& loop) {
  auto executor = take(loop);
  if (!executor) return false;
  executor->shutdown(true);
  return true;
}

}  // namespace tulipa
