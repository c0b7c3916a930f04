// The four phases of one pass of the loop (see the comment at the top of include/tulipa/loop.hpp).
// This is the only place where callbacks are called; everything else only adds them to the ready queue.
#include <chrono>
#include <exception>
#include <string>

#include "loop/error_context.hpp"
#include "loop/heap_trim.hpp"
#include "loop/loop_impl.hpp"

namespace tulipa {

void EventLoop::Impl::run_once() {
  Duration timeout = compute_timeout();
  // About to sleep: the moment to give back what a burst left in the heap (heap_trim.hpp).
  if (timeout != Duration::zero()) timeout = detail::trim_heap_before_sleep(timeout, *this);
  poll(timeout);
  collect_threadsafe();
  collect_due_timers();
  run_ready();
}

bool EventLoop::Impl::over_reserve() const noexcept {
  return pool.over_reserve() || timers.over_reserve() || fds.over_reserve() || selector->over_reserve();
}

std::size_t EventLoop::Impl::give_back() noexcept {
  return pool.give_back() + timers.give_back() + fds.give_back() + selector->give_back();
}

// Phase 1: how long the selector may sleep.
Duration EventLoop::Impl::compute_timeout() noexcept {
  if (!ready.empty() || stopping) return Duration::zero();
  if (timers.empty()) return Selector::forever;
  // A virtual clock never sleeps for real while timers wait: it polls, then jumps (see poll()).
  if (clock->is_virtual()) return Duration::zero();
  Duration left = timers.top_when() - now();
  return left > Duration::zero() ? left : Duration::zero();
}

// Phase 2: wait for readiness and hand each event to its fd's watcher at once.
void EventLoop::Impl::poll(Duration timeout) {
  const bool may_sleep = timeout != Duration::zero();
  if (may_sleep && !threadsafe->prepare_sleep()) timeout = Duration::zero();
  auto events = selector->select(timeout);
  if (may_sleep) threadsafe->end_sleep();

  for (const SelectorEvent& ev : events) {
    // An earlier watcher in this batch may have unwatched this fd (and even closed it and had it reused): deliver
    // only to the watcher registered now, and only what it asks for. A stale event on a reused fd number is at
    // worst a spurious wake-up, which level-triggered non-blocking I/O shrugs off.
    detail::FdEntry* entry = fds.find(ev.fd);
    if (!entry || !entry->registered || entry->watcher != ev.data) continue;
    Events wanted = ev.events & entry->events;
    if (any(wanted)) dispatch_io(entry->watcher, ev.fd, wanted);
  }

  // (On io_uring operations, completions delivered inside select() are I/O too, though they are no events.)
  if (events.empty() && clock->is_virtual() && ready.empty() && !stopping && !timers.empty() &&
      !threadsafe->has_items() && !(wakeup_read.ops && wakeup_read.ops->delivered() > 0)) {
    clock->sleep_until(timers.top_when());
  }
}

void EventLoop::Impl::dispatch_io(IoWatcher* watcher, int fd, Events ready_events) {
  const auto start = debug ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  try {
    watcher->on_io(ready_events);
  } catch (...) {
    self.call_exception_handler(
        detail::error_context("Exception in I/O callback for fd " + std::to_string(fd), std::current_exception(), fd));
  }
  if (!retired_rw.empty()) retired_rw.clear();
  if (debug) {
    Duration took = std::chrono::steady_clock::now() - start;
    if (took >= slow_callback) report_slow("I/O callback for fd " + std::to_string(fd), {}, took);
  }
}

// Callbacks from other threads join the ready queue, in the order they were queued. Also called by
// schedule_ready (call_soon on the loop's thread), so that they stay ahead of what is scheduled after them.
void EventLoop::Impl::collect_threadsafe() {
  if (!threadsafe->has_items()) return;
  for (auto& entry : threadsafe->take()) enqueue_ready(std::move(entry.fn), entry.where);
}

// Phase 3: due timers join the ready queue in (deadline, scheduling) order.
void EventLoop::Impl::collect_due_timers() {
  if (timers.empty()) return;
  const TimePoint t = now();
  while (!timers.empty() && timers.top_when() <= t) {
    detail::HandleNode* n = timers.pop();
    n->state = detail::NodeState::ready;
    ready.push(n);
  }
}

// Phase 4: run exactly what was ready when the phase began.
void EventLoop::Impl::run_ready() {
  for (std::size_t todo = ready.size(); todo > 0; --todo) run_node(ready.pop());
}

void EventLoop::Impl::run_node(detail::HandleNode* n) {
  if (n->state == detail::NodeState::cancelled) {
    pool.release(n);
    return;
  }
  n->state = detail::NodeState::running;
  const auto start = debug ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  try {
    n->fn();
  } catch (...) {
    ErrorContext ctx = detail::error_context("Exception in callback", std::current_exception());
    ctx.scheduled_at = n->where;
    self.call_exception_handler(ctx);
  }
  if (debug) {
    Duration took = std::chrono::steady_clock::now() - start;
    if (took >= slow_callback) report_slow("callback", n->where, took);
  }
  pool.release(n);
}

void EventLoop::Impl::report_slow(std::string_view what, std::source_location where, Duration took) {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.3f", std::chrono::duration<double>(took).count());
  std::string line = "Executing ";
  line += what;
  if (where.file_name() && *where.file_name()) {
    line += " scheduled at ";
    line += where.file_name();
    line += ':';
    line += std::to_string(where.line());
    line += " (";
    line += where.function_name();
    line += ')';
  }
  line += " took ";
  line += secs;
  line += " seconds";
  self.log(line);
}

}  // namespace tulipa
