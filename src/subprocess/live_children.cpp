#include "subprocess/live_children.hpp"

#include <algorithm>
#include <vector>

#include "subprocess/subprocess_transport.hpp"
#include "tulipa/future.hpp"
#include "tulipa/runner.hpp"

namespace tulipa::detail {
namespace {

struct LiveChildren final : LoopExtension {
  std::vector<SubprocessTransportImpl*> live;
  std::vector<Future<void>> idle_waiters;  // the shutdown hook, waiting for `live` to empty
  bool hook_registered = false;

  void on_close(EventLoop&) noexcept override {
    // A copy: a child may finish (and untrack itself) from here if its pipes were already lost.
    for (SubprocessTransportImpl* t : std::vector<SubprocessTransportImpl*>(live)) t->end_at_loop_close();
  }
};

Coro<void> close_children(EventLoop* loop) {
  auto& e = loop->extension<LiveChildren>();
  e.hook_registered = false;  // a child spawned from here on registers a new hook
  // close() finishes nothing synchronously (everything comes back as loop callbacks); a copy for safety all the same.
  for (SubprocessTransportImpl* t : std::vector<SubprocessTransportImpl*>(e.live)) t->close();
  while (!e.live.empty()) {
    Future<void> idle(*loop);
    e.idle_waiters.push_back(idle);
    co_await idle;
  }
}

}  // namespace

void track_child(EventLoop& loop, SubprocessTransportImpl* t) {
  auto& e = loop.extension<LiveChildren>();
  e.live.push_back(t);
  if (!e.hook_registered) {
    e.hook_registered = true;
    add_shutdown_hook(loop, [l = &loop] { return close_children(l); });
  }
}

void untrack_child(EventLoop& loop, SubprocessTransportImpl* t) noexcept {
  auto* e = loop.find_extension<LiveChildren>();
  if (!e) return;
  std::erase(e->live, t);
  if (!e->live.empty()) return;
  for (auto& w : e->idle_waiters) w.try_set_result();
  e->idle_waiters.clear();
}

}  // namespace tulipa::detail
