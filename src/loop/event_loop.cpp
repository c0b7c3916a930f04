// EventLoop's public surface: construction, running and stopping, scheduling, fds, signals, errors, debug mode.
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "loop/error_context.hpp"
#include "loop/loop_impl.hpp"

#if TULIPA_HAVE_URING
#include <liburing.h>
#endif

namespace tulipa {
namespace {

thread_local EventLoop* t_running_loop = nullptr;

bool debug_from_environment() {
  const char* v = std::getenv("TULIPA_DEBUG");
  return v && *v && std::strcmp(v, "0") != 0;
}

// The loop's backend: the one asked for, or epoll where io_uring is refused, said once per process on stderr
// (the loop's log handler cannot be set before the loop exists; a process with a loop per core logs it once).
std::unique_ptr<Selector> make_backend(LoopOptions& options) {
  if (options.selector) return std::move(options.selector);
  std::string reason;
  auto selector = make_selector(options.backend, &reason);
  static std::atomic<bool> told{false};
  if (!reason.empty() && !told.exchange(true))
    std::fprintf(stderr, "tulipa: io_uring refused (%s), the loop runs on epoll\n", reason.c_str());
  return selector;
}

}  // namespace

// ---------------------------------------------------------------- Impl

EventLoop::Impl::Impl(EventLoop& owner, LoopOptions options)
    : self(owner),
      selector(make_backend(options)),
      clock(options.clock ? options.clock : &steady),
      threadsafe(std::make_unique<detail::ThreadsafeQueue>()),
      debug(options.debug ? *options.debug : debug_from_environment()) {
  wakeup_watcher.loop = this;
  signal_watcher.loop = this;
}

// The selector goes first: tearing an io_uring down delivers the final completions of the operations still in flight
// (uring_ops.hpp) to their targets, the wake-up read among them.
EventLoop::Impl::~Impl() { selector.reset(); }

detail::HandleNode* EventLoop::Impl::schedule_ready(Callback fn, std::source_location where) {
  // One FIFO, as asyncio's: callbacks other threads queued before this one run before it, even when the loop has
  // not collected them yet (an atomic load when there are none).
  if (threadsafe->has_items()) collect_threadsafe();
  return enqueue_ready(std::move(fn), where);
}

detail::HandleNode* EventLoop::Impl::enqueue_ready(Callback fn, std::source_location where) {
  detail::HandleNode* n = pool.acquire();
  n->fn = std::move(fn);
  n->where = where;
  n->state = detail::NodeState::ready;
  ready.push(n);
  return n;
}

detail::HandleNode* EventLoop::Impl::schedule_timer(TimePoint when, Callback fn, std::source_location where) {
  detail::HandleNode* n = pool.acquire();
  n->fn = std::move(fn);
  n->where = where;
  n->when = when;
  n->state = detail::NodeState::timer;
  try {
    timers.push(n);
  } catch (...) {
    pool.release(n);
    throw;
  }
  return n;
}

void EventLoop::Impl::cancel(detail::HandleNode* n) noexcept {
  switch (n->state) {
    case detail::NodeState::timer:
      timers.remove(n);
      pool.release(n);
      break;
    case detail::NodeState::ready:
      // Still linked in the ready queue: mark it, drop the captures now (as asyncio drops _callback), and let the
      // ready phase recycle the node.
      n->state = detail::NodeState::cancelled;
      n->fn.reset();
      break;
    default:  // running, already cancelled, or free: nothing to do
      break;
  }
}

void EventLoop::Impl::check_open(const char* what) const {
  if (closed) throw std::logic_error(std::string(what) + ": the event loop is closed");
}

// ---------------------------------------------------------------- Handle

static_assert(sizeof(Handle) == 16, "a Handle is two words: its pool, and its slot, flag and generation");

void Handle::cancel() noexcept {
  cancelled_ = true;
  if (!pool_) return;
  detail::HandleNode* n = pool_->find(slot_);
  if (n && n->generation == generation_) pool_->loop()->cancel(n);
}

bool Handle::pending() const noexcept {
  const detail::HandleNode* n = pool_ ? pool_->find(slot_) : nullptr;
  if (!n || n->generation != generation_) return false;
  return n->state == detail::NodeState::ready || n->state == detail::NodeState::timer;
}

// ---------------------------------------------------------------- construction

EventLoop::EventLoop() : EventLoop(LoopOptions{}) {}

EventLoop::EventLoop(LoopOptions options) : impl_(std::make_unique<Impl>(*this, std::move(options))) {
#if TULIPA_HAVE_URING
  if (detail::UringOps* ops = detail::uring_ops(*this)) {
    impl_->wakeup_read.loop = impl_.get();
    impl_->wakeup_read.ops = ops;
    impl_->wakeup_read.arm();
    ops->add_resident(&impl_->wakeup_read);
    impl_->signal_read.loop = impl_.get();
    impl_->signal_read.ops = ops;
    return;
  }
#endif
  watch(impl_->threadsafe->wakeup_fd(), Events::read, &impl_->wakeup_watcher);
}

#if TULIPA_HAVE_URING
void detail::WakeupRead::arm() {
  io_uring_sqe* s = ops->prepare(this, 0);
  io_uring_prep_read(s, loop->threadsafe->wakeup_fd(), &value, sizeof value, 0);
}

void detail::WakeupRead::on_completion(unsigned, int, unsigned, bool teardown) noexcept {
  if (teardown) return;
  loop->threadsafe->woken();
  if (loop->closed) return;
  try {
    arm();
  } catch (...) {
    // No SQE to be had (the ring refused even after flushing): poll the eventfd instead, as other backends do.
    loop->self.watch(loop->threadsafe->wakeup_fd(), Events::read, &loop->wakeup_watcher);
  }
}

void detail::SignalRead::arm() {
  io_uring_sqe* s = ops->prepare(this, 0);
  io_uring_prep_read(s, loop->signals.read_fd(), bytes, sizeof bytes, 0);
  armed = true;
}

void detail::SignalRead::on_completion(unsigned, int res, unsigned, bool teardown) noexcept {
  armed = false;
  if (teardown) return;
  for (int i = 0; i < res; ++i) loop->signal_arrived(int(bytes[i]));
  if (loop->closed) return;
  try {
    arm();
  } catch (...) {
    // No SQE to be had: poll the pipe instead, as other backends do.
    loop->self.watch(loop->signals.read_fd(), Events::read, &loop->signal_watcher);
  }
}
#else
void detail::WakeupRead::arm() {}
void detail::WakeupRead::on_completion(unsigned, int, unsigned, bool) noexcept {}
void detail::SignalRead::arm() {}
void detail::SignalRead::on_completion(unsigned, int, unsigned, bool) noexcept {}
#endif

EventLoop::~EventLoop() {
  if (impl_) {
    if (is_running()) std::terminate();  // destroying a running loop is a bug that nothing can recover from
    close();
  }
}

// ---------------------------------------------------------------- running

void EventLoop::run_forever() {
  Impl& s = *impl_;
  s.check_open("run_forever");
  if (t_running_loop) throw std::logic_error("run_forever: another event loop is running on this thread");
  if (s.running.exchange(true)) throw std::logic_error("run_forever: this event loop is already running");
  t_running_loop = this;
  s.thread_id.store(std::this_thread::get_id(), std::memory_order_relaxed);
  struct Reset {
    Impl& s;
    ~Reset() {
      s.stopping = false;
      s.thread_id.store(std::thread::id(), std::memory_order_relaxed);
      s.running.store(false);
      t_running_loop = nullptr;
    }
  } reset{s};
  for (;;) {  // as asyncio: stop() before run_forever() still runs one pass
    s.run_once();
    if (s.stopping) break;
  }
}

void EventLoop::run_once() {
  Impl& s = *impl_;
  s.check_open("run_once");
  // run_once from inside a running loop's callback would re-enter dispatch: only at top level.
  if (s.running.load()) throw std::logic_error("run_once: the event loop is already running");
  EventLoop* previous = t_running_loop;
  if (previous) throw std::logic_error("run_once: another event loop is running on this thread");
  t_running_loop = this;
  s.thread_id.store(std::this_thread::get_id(), std::memory_order_relaxed);
  struct Restore {
    Impl& s;
    EventLoop* previous;
    ~Restore() {
      s.thread_id.store(std::thread::id(), std::memory_order_relaxed);
      t_running_loop = previous;
    }
  } restore{s, previous};
  s.run_once();
}

void EventLoop::stop() noexcept { impl_->stopping = true; }

void EventLoop::stop_threadsafe() {
  call_soon_threadsafe([this] { stop(); });
}

bool EventLoop::is_running() const noexcept { return impl_->running.load(); }

void EventLoop::close() {
  Impl& s = *impl_;
  if (s.running.load()) throw std::logic_error("close: the event loop is running");
  if (s.closed) return;
  // Extensions first, newest first, while scheduling still works (a task torn down may schedule its cleanup).
  // An extension made during another's on_close is told afterwards. (Raw pointers: the vector may grow meanwhile.)
  auto& items = s.extensions.items;
  const std::size_t existing = items.size();
  for (std::size_t i = existing; i-- > 0;) items[i].second.get()->on_close(*this);
  for (std::size_t i = existing; i < items.size(); ++i) items[i].second.get()->on_close(*this);
  // Watchers still registered (open transports, mostly): each is told once. One may end others or unwatch
  // itself, so the fds are collected first and each is looked up again before its watcher is told.
  std::vector<std::pair<int, IoWatcher*>> live;
  s.fds.for_each([&](int fd, detail::FdEntry& e) {
    if (e.watcher && !e.owns_rw) live.emplace_back(fd, e.watcher);
  });
  for (auto [fd, watcher] : live) {
    detail::FdEntry* e = s.fds.find(fd);
    if (e && e->watcher == watcher) watcher->on_loop_close();
  }
  s.threadsafe->close();
  s.signals.clear();
  // Drop pending callbacks without running them. Their destructors may schedule more (a task's cleanup, say):
  // scheduling still works during these rounds, and whatever they add is dropped in the next round.
  for (int round = 0; round < 8 && (!s.ready.empty() || !s.timers.empty()); ++round) {
    while (!s.timers.empty()) s.pool.release(s.timers.pop());
    while (!s.ready.empty()) s.pool.release(s.ready.pop());
  }
  s.closed = true;
  s.fds.for_each([&](int fd, detail::FdEntry& e) {
    if (e.registered) {
      try {
        s.selector->unregister(fd);
      } catch (...) {
      }
    }
  });
  s.fds = detail::FdMap<detail::FdEntry>();
}

bool EventLoop::is_closed() const noexcept { return impl_->closed; }

// ---------------------------------------------------------------- time & scheduling

TimePoint EventLoop::time() const noexcept { return impl_->now(); }
Clock& EventLoop::clock() const noexcept { return *impl_->clock; }

void EventLoop::Impl::check_thread(const char* what) const {
  const std::thread::id owner = thread_id.load(std::memory_order_relaxed);
  if (owner != std::thread::id() && owner != std::this_thread::get_id()) {
    throw std::logic_error(std::string(what) +
                           ": Non-thread-safe operation invoked on an event loop other than the current one (use "
                           "call_soon_threadsafe)");
  }
}

Handle EventLoop::call_soon(Callback fn, std::source_location where) {
  impl_->check_open("call_soon");
  if (impl_->debug) impl_->check_thread("call_soon");
  detail::HandleNode* n = impl_->schedule_ready(std::move(fn), where);
  return Handle(&impl_->pool, n->slot, n->generation);
}

TimerHandle EventLoop::call_later(Duration delay, Callback fn, std::source_location where) {
  return call_at(impl_->now() + delay, std::move(fn), where);
}

TimerHandle EventLoop::call_at(TimePoint when, Callback fn, std::source_location where) {
  impl_->check_open("call_at");
  if (impl_->debug) impl_->check_thread("call_at/call_later");
  detail::HandleNode* n = impl_->schedule_timer(when, std::move(fn), where);
  return TimerHandle(&impl_->pool, n->slot, n->generation, when);
}

void EventLoop::call_soon_threadsafe(Callback fn, std::source_location where) {
  impl_->threadsafe->push(std::move(fn), where);
}

void detail::WakeupWatcher::on_io(Events) { loop->threadsafe->drain_wakeup(); }

// ---------------------------------------------------------------- fds

void EventLoop::Impl::set_interest(int fd, detail::FdEntry& e, Events events) {
  if (events == e.events && e.registered == any(events)) return;
  if (!any(events)) {
    if (e.registered) {
      selector->unregister(fd);
      e.registered = false;
    }
  } else if (e.registered) {
    selector->modify(fd, events, e.watcher);
  } else {
    selector->register_fd(fd, events, e.watcher);
    e.registered = true;
  }
  e.events = events;
}

void EventLoop::Impl::forget_fd(int fd, detail::FdEntry& e) {
  if (e.registered) selector->unregister(fd);
  fds.erase(fd);
}

void EventLoop::watch(int fd, Events events, IoWatcher* watcher) {
  impl_->check_open("watch");
  if (fd < 0) throw std::system_error(EBADF, std::generic_category(), "watch");
  if (!watcher) throw std::invalid_argument("watch: null watcher");
  if (impl_->fds.find(fd))
    throw std::system_error(EEXIST, std::generic_category(), "watch: fd " + std::to_string(fd) + " is already watched");
  detail::FdEntry& e = impl_->fds.insert(fd, detail::FdEntry(watcher));
  try {
    impl_->set_interest(fd, e, events);
  } catch (...) {
    impl_->fds.erase(fd);
    throw;
  }
}

void EventLoop::update_watch(int fd, Events events) {
  detail::FdEntry* e = impl_->fds.find(fd);
  if (!e)
    throw std::system_error(ENOENT, std::generic_category(),
                            "update_watch: fd " + std::to_string(fd) + " is not watched");
  impl_->set_interest(fd, *e, events);
}

void EventLoop::unwatch(int fd) {
  detail::FdEntry* e = impl_->fds.find(fd);
  if (!e) return;
  impl_->forget_fd(fd, *e);
}

detail::ReaderWriter& EventLoop::Impl::reader_writer(int fd) {
  check_open("add_reader/add_writer");
  if (fd < 0) throw std::system_error(EBADF, std::generic_category(), "add_reader/add_writer");
  if (detail::FdEntry* e = fds.find(fd)) {
    if (!e->rw()) throw std::logic_error("fd " + std::to_string(fd) + " is used by a transport");
    return *e->rw();
  }
  auto rw = std::make_unique<detail::ReaderWriter>();
  rw->loop = this;
  rw->fd = fd;
  return *fds.insert(fd, detail::FdEntry(std::move(rw))).rw();
}

// The fd has its ReaderWriter (reader_writer() made it, or remove_* found it).
void EventLoop::Impl::update_reader_writer(int fd) {
  detail::FdEntry& e = *fds.find(fd);
  Events want = e.rw()->interest();
  if (!any(want)) {
    if (e.rw()->calling) {        // still on the stack: free after the dispatch
      retired_rw.emplace_back();  // first, so that a bad_alloc leaves the entry owning it
      retired_rw.back() = e.release_rw();
    }
    forget_fd(fd, e);  // the selector forgets the fd
    return;
  }
  set_interest(fd, e, want);
}

void EventLoop::add_reader(int fd, Callback fn) {
  detail::ReaderWriter& rw = impl_->reader_writer(fd);
  Callback old = std::exchange(rw.reader, std::move(fn));
  try {
    impl_->update_reader_writer(fd);
  } catch (...) {
    rw.reader = std::move(old);
    if (!any(rw.interest())) impl_->fds.erase(fd);
    throw;
  }
  rw.drop(old);
}

void EventLoop::add_writer(int fd, Callback fn) {
  detail::ReaderWriter& rw = impl_->reader_writer(fd);
  Callback old = std::exchange(rw.writer, std::move(fn));
  try {
    impl_->update_reader_writer(fd);
  } catch (...) {
    rw.writer = std::move(old);
    if (!any(rw.interest())) impl_->fds.erase(fd);
    throw;
  }
  rw.drop(old);
}

bool EventLoop::remove_reader(int fd) {
  detail::FdEntry* e = impl_->fds.find(fd);
  detail::ReaderWriter* rw = e ? e->rw() : nullptr;
  if (!rw || !rw->reader) return false;
  Callback dropped = std::move(rw->reader);
  const bool calling = rw->calling;
  impl_->update_reader_writer(fd);  // frees rw, unless it is calling: then it is retired until the call returns
  if (calling) rw->drop(dropped);
  return true;
}

bool EventLoop::remove_writer(int fd) {
  detail::FdEntry* e = impl_->fds.find(fd);
  detail::ReaderWriter* rw = e ? e->rw() : nullptr;
  if (!rw || !rw->writer) return false;
  Callback dropped = std::move(rw->writer);
  const bool calling = rw->calling;
  impl_->update_reader_writer(fd);  // frees rw, unless it is calling: then it is retired until the call returns
  if (calling) rw->drop(dropped);
  return true;
}

// The reader runs before the writer. Either may remove the other, or itself: re-check through the table.
void detail::ReaderWriter::drop(Callback& slot) {
  if (calling && slot)
    retired.push_back(std::move(slot));
  else
    slot.reset();
}

void detail::ReaderWriter::on_io(Events ready) {
  EventLoop::Impl* l = loop;
  const int my_fd = fd;
  struct Calling {
    ReaderWriter& rw;
    Calling(ReaderWriter& r) : rw(r) { rw.calling = true; }
    ~Calling() {
      rw.calling = false;
      rw.retired.clear();
    }
  } calling_scope{*this};
  if (any(ready & Events::read) && reader) reader();
  if (!any(ready & Events::write)) return;
  FdEntry* e = l->fds.find(my_fd);
  if (e && e->rw() == this && writer) writer();
}

// ---------------------------------------------------------------- signals

void EventLoop::add_signal_handler(int signum, Callback fn) {
  Impl& s = *impl_;
  s.check_open("add_signal_handler");
  s.signals.add(signum, std::move(fn));
  if (s.signal_read.ops) {
    // io_uring: the read goes on in flight once started (see SignalRead), unless the ring refused it once.
    if (s.signal_read.armed || s.fds.find(s.signals.read_fd())) return;
    try {
      s.signal_read.arm();
      s.signal_read.ops->add_resident(&s.signal_read);
      return;
    } catch (const std::system_error&) {
      // no SQE to be had: poll the pipe, as other backends do
    }
  }
  detail::FdEntry* e = s.fds.find(s.signals.read_fd());
  if (!e) watch(s.signals.read_fd(), Events::read, &s.signal_watcher);
}

bool EventLoop::remove_signal_handler(int signum) {
  Impl& s = *impl_;
  bool removed = s.signals.remove(signum);
  if (removed && s.signals.empty() && s.fds.find(s.signals.read_fd())) unwatch(s.signals.read_fd());
  return removed;
}

// A signal's handler runs as an ordinary ready callback, looked up when it runs (so removing the handler in
// between drops the delivery).
void EventLoop::Impl::signal_arrived(int signum) {
  if (!signals.handler(signum)) return;
  schedule_ready(
      [this, signum] {
        if (Callback* h = signals.handler(signum)) (*h)();
      },
      std::source_location::current());
}

void detail::SignalWatcher::on_io(Events) {
  EventLoop::Impl* l = loop;
  l->signals.drain([l](int signum) { l->signal_arrived(signum); });
}

// ---------------------------------------------------------------- errors & logging

void EventLoop::set_exception_handler(ExceptionHandler handler) { impl_->exception_handler = std::move(handler); }
const ExceptionHandler& EventLoop::get_exception_handler() const noexcept { return impl_->exception_handler; }

void EventLoop::default_exception_handler(const ErrorContext& ctx) { log(detail::describe(ctx)); }

std::string detail::describe(const ErrorContext& ctx) {
  std::string line = ctx.message.empty() ? "Unhandled exception in event loop" : ctx.message;
  if (ctx.exception) {
    try {
      std::rethrow_exception(ctx.exception);
    } catch (const std::exception& e) {
      line += ": ";
      line += e.what();
    } catch (...) {
      line += ": (unknown exception)";
    }
  }
  if (!ctx.task.empty()) line += "\n  task: " + ctx.task;
  if (ctx.fd >= 0) line += "\n  fd: " + std::to_string(ctx.fd);
  if (ctx.scheduled_at.file_name() && *ctx.scheduled_at.file_name()) {
    line += "\n  scheduled at: ";
    line += ctx.scheduled_at.file_name();
    line += ':' + std::to_string(ctx.scheduled_at.line()) + " (" + ctx.scheduled_at.function_name() + ')';
  }
  return line;
}

void EventLoop::call_exception_handler(const ErrorContext& ctx) noexcept {
  if (!impl_->exception_handler) {
    try {
      default_exception_handler(ctx);
    } catch (...) {
      std::fputs("tulipa: exception in default exception handler\n", stderr);
    }
    return;
  }
  try {
    impl_->exception_handler(*this, ctx);
  } catch (...) {
    try {
      default_exception_handler(
          detail::error_context("Unhandled error in exception handler", std::current_exception()));
      default_exception_handler(ctx);
    } catch (...) {
      std::fputs("tulipa: exception in default exception handler\n", stderr);
    }
  }
}

void EventLoop::set_log_handler(LogHandler handler) { impl_->log_handler = std::move(handler); }

void EventLoop::log(std::string_view line) noexcept {
  try {
    if (impl_->log_handler) {
      impl_->log_handler(line);
      return;
    }
  } catch (...) {
  }
  std::fprintf(stderr, "tulipa: %.*s\n", static_cast<int>(line.size()), line.data());
}

// ---------------------------------------------------------------- debug & introspection

void EventLoop::set_debug(bool on) noexcept { impl_->debug = on; }
bool EventLoop::get_debug() const noexcept { return impl_->debug; }
Duration EventLoop::slow_callback_duration() const noexcept { return impl_->slow_callback; }
void EventLoop::set_slow_callback_duration(Duration d) noexcept { impl_->slow_callback = d; }

std::size_t EventLoop::ready_count() const noexcept { return impl_->ready.size(); }
std::size_t EventLoop::timer_count() const noexcept { return impl_->timers.size(); }
EventLoop::Reserves EventLoop::reserves() const noexcept {
  return {impl_->pool.capacity(), impl_->pool.in_use(), impl_->timers.capacity(), impl_->fds.dense_capacity()};
}
std::uint64_t EventLoop::threadsafe_wakeups() const noexcept { return impl_->threadsafe->wakeups_sent(); }
Selector& EventLoop::selector() noexcept { return *impl_->selector; }

LoopExtension* EventLoop::find_extension(const void* key) noexcept {
  for (auto& [k, ext] : impl_->extensions.items)
    if (k == key) return ext.get();
  return nullptr;
}

void EventLoop::add_extension(const void* key, std::unique_ptr<LoopExtension> ext) {
  impl_->extensions.items.emplace_back(key, std::move(ext));
}

EventLoop* running_loop() noexcept { return t_running_loop; }

EventLoop& get_running_loop() {
  if (!t_running_loop) throw std::runtime_error("no running event loop");
  return *t_running_loop;
}

}  // namespace tulipa
