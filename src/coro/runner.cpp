// run() support: asyncio.runners (cancel what is left, shut down, close).
#include "tulipa/runner.hpp"
#include "loop/error_context.hpp"

#include <stdexcept>

#include "coro/registry.hpp"
#include "tulipa/executor.hpp"

namespace tulipa {

namespace detail {

void check_not_running_here() {
  if (running_loop()) throw std::logic_error("tulipa::run() cannot be called from a running event loop");
}

void finish_run(EventLoop& loop, Duration shutdown_timeout) noexcept {
  try {
    cancel_all_tasks(loop, shutdown_timeout);
  } catch (...) {
  }
  close_tasks(loop);  // those that outlived the timeout
  try {
    run_shutdown_hooks(loop);
  } catch (...) {
  }
  try {
    shutdown_default_executor(loop);
  } catch (...) {
  }
  close_tasks(loop);  // tasks created by the hooks and left behind
  try {
    loop.close();
  } catch (...) {
  }
}

namespace {
// Waits for a set of tasks by stopping the loop when the last one finishes.
struct AllDone {
  struct Node : DoneNode {
    AllDone* self;
  };
  EventLoop& loop;
  std::size_t pending = 0;
  std::vector<Node> nodes;
  std::vector<AnyTask>& tasks;
  AllDone(EventLoop& l, std::vector<AnyTask>& ts) : loop(l), nodes(ts.size()), tasks(ts) {
    for (std::size_t i = 0; i < ts.size(); ++i) {
      if (ts[i].done()) continue;
      ++pending;
      nodes[i].self = this;
      nodes[i].fn = [](DoneNode* d, FutureCore&) noexcept {
        AllDone* s = static_cast<Node*>(d)->self;
        if (--s->pending == 0) s->loop.stop();
      };
      ts[i].base()->core().add_node(nodes[i]);
    }
  }
  ~AllDone() {
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (nodes[i].linked) tasks[i].base()->core().remove_node(nodes[i]);
  }
};
}  // namespace

}  // namespace detail

std::size_t cancel_all_tasks(EventLoop& loop, Duration timeout) {
  const TimePoint deadline = loop.time() + timeout;
  std::vector<AnyTask> tasks = all_tasks(loop);
  // A few rounds: cancelling a task can make its cleanup start new tasks, or it may refuse once.
  for (int round = 0; round < 3 && !tasks.empty() && loop.time() < deadline; ++round) {
    for (auto& t : tasks) t.cancel();
    {
      detail::AllDone all(loop, tasks);
      if (all.pending > 0) {
        TimerHandle watchdog = loop.call_at(deadline, [&loop] { loop.stop(); });
        loop.run_forever();
        watchdog.cancel();
      }
    }
    for (auto& t : tasks) {
      if (!t.done() || t.cancelled()) continue;
      if (auto e = t.exception()) {
        ErrorContext ctx = detail::error_context("unhandled exception during tulipa::run() shutdown", e);
        ctx.task = t.get_name();
        ctx.scheduled_at = t.created_at();
        loop.call_exception_handler(ctx);
      }
    }
    tasks = all_tasks(loop);
  }
  return tasks.size();
}

void add_shutdown_hook(EventLoop& loop, std::function<Coro<void>()> hook) {
  detail::task_registry(loop).shutdown_hooks.push_back(std::move(hook));
}

void run_shutdown_hooks(EventLoop& loop) {
  auto& reg = detail::task_registry(loop);
  while (!reg.shutdown_hooks.empty()) {
    auto hooks = std::move(reg.shutdown_hooks);
    reg.shutdown_hooks.clear();
    for (auto& h : hooks) {
      try {
        run_until_complete(loop, h());
      } catch (...) {
        loop.call_exception_handler(detail::error_context("a shutdown hook failed", std::current_exception()));
      }
    }
  }
}

}  // namespace tulipa
