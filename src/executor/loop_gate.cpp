// LoopGate: how worker threads post results to a loop without racing its destruction.
//
// EventLoop::call_soon_threadsafe still touches the loop after the callback became visible to it (the wake-up
// flags, the eventfd write), so a worker finishing a post while run() returns and destroys the loop would write
// into freed memory, or into an eventfd number the process has since reused (TSan found it with the DNS pool, which
// is never joined). Workers therefore post under the gate's mutex, and run()'s shutdown hook closes the gate, which
// waits for a post in progress; after that, posts are refused and their results dropped.
#include <mutex>
#include <utility>
#include <vector>

#include "tulipa/loop.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/to_thread.hpp"

namespace tulipa::detail {

class LoopGate {
 public:
  explicit LoopGate(EventLoop& loop) noexcept : loop_(&loop) {}
  bool post(Callback& fn) noexcept {
    std::lock_guard lock(mu_);
    if (!loop_) return false;
    try {
      loop_->call_soon_threadsafe(std::move(fn));
      return true;
    } catch (...) {
      return false;  // closed by hand without the hooks: the callback died inside, on this thread
    }
  }
  void close() noexcept {
    std::lock_guard lock(mu_);
    loop_ = nullptr;
  }

 private:
  std::mutex mu_;
  EventLoop* loop_;
};

namespace {

struct Gates {
  std::mutex mu;
  std::vector<std::pair<const EventLoop*, std::shared_ptr<LoopGate>>> entries;
};

Gates& gates() {
  static auto* g = new Gates;  // never destroyed: workers may post while static destructors run
  return *g;
}

void close_gate(const EventLoop& loop) {
  std::shared_ptr<LoopGate> gate;
  {
    Gates& g = gates();
    std::lock_guard lock(g.mu);
    for (auto it = g.entries.begin(); it != g.entries.end(); ++it) {
      if (it->first == &loop) {
        gate = std::move(it->second);
        g.entries.erase(it);
        break;
      }
    }
  }
  if (gate) gate->close();
}

}  // namespace

std::shared_ptr<LoopGate> loop_gate(EventLoop& loop) {
  {
    Gates& g = gates();
    std::lock_guard lock(g.mu);
    for (auto& [l, gate] : g.entries) {
      if (l == &loop) return gate;
    }
  }
  auto gate = std::make_shared<LoopGate>(loop);
  {
    Gates& g = gates();
    std::lock_guard lock(g.mu);
    g.entries.emplace_back(&loop, gate);
  }
  // Closed in the last round of shutdown hooks: the hook first re-registers itself, so that it runs after every hook
  // of the first round (the default executor's, whose joins let the workers post their last results).
  add_shutdown_hook(loop, [&loop]() -> Coro<void> {
    add_shutdown_hook(loop, [&loop]() -> Coro<void> {
      close_gate(loop);
      co_return;
    });
    co_return;
  });
  return gate;
}

bool post_through(LoopGate& gate, Callback fn) noexcept { return gate.post(fn); }

}  // namespace tulipa::detail
