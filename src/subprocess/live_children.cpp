#include "subprocess/live_children.hpp"

#include <algorithm>
#include <vector>

#include "subprocess/subprocess_transport.hpp"
#include "tulipa/future.hpp"
#include "tulipa/runner.hpp"

namespace tulipa::detail {
namespace {

struct Entry {
  EventLoop* loop;
  std::vector<SubprocessTransportImpl*> live;
  std::vector<Future<void>> idle_waiters;  // the shutdown hook, waiting for `live` to empty
  bool hook_registered = false;
};

// Loops run on one thread each, so a per-thread list needs no lock. Entries go once a loop has no child and no
// hook pending.
std::vector<Entry>& entries() {
  thread_local std::vector<Entry> e;
  return e;
}

Entry* find(EventLoop* loop) {
  for (auto& e : entries())
    if (e.loop == loop) return &e;
  return nullptr;
}

void erase_if_unused(EventLoop* loop) {
  std::erase_if(entries(), [loop](const Entry& e) { return e.loop == loop && e.live.empty() && !e.hook_registered; });
}

Coro<void> close_children(EventLoop* loop) {
  Entry* e = find(loop);
  if (!e) co_return;
  e->hook_registered = false;  // a child spawned from here on registers a new hook
  // close() may finish nothing synchronously (everything comes back as loop callbacks), so iterating a copy is
  // only for safety against future changes.
  for (SubprocessTransportImpl* t : std::vector<SubprocessTransportImpl*>(e->live)) t->close();
  while ((e = find(loop)) && !e->live.empty()) {
    Future<void> idle(*loop);
    e->idle_waiters.push_back(idle);
    co_await idle;
  }
  erase_if_unused(loop);
}

}  // namespace

void track_child(EventLoop& loop, SubprocessTransportImpl* t) {
  Entry* e = find(&loop);
  if (!e) e = &entries().emplace_back(Entry{&loop, {}, {}, false});
  e->live.push_back(t);
  if (!e->hook_registered) {
    e->hook_registered = true;
    add_shutdown_hook(loop, [l = &loop] { return close_children(l); });
  }
}

void untrack_child(EventLoop& loop, SubprocessTransportImpl* t) noexcept {
  Entry* e = find(&loop);
  if (!e) return;
  std::erase(e->live, t);
  if (!e->live.empty()) return;
  for (auto& w : e->idle_waiters) w.try_set_result();
  e->idle_waiters.clear();
  erase_if_unused(&loop);
}

}  // namespace tulipa::detail
