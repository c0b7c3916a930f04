// ThreadPoolExecutor: a mutex, one condition variable, a ring of queued callables and up to max_workers threads.
//
// Ownership: each worker holds a shared_ptr to the pool's state, so the state outlives the ThreadPoolExecutor
// object when the object is destroyed from one of its own workers (the last owner of a default executor can be a
// worker finishing a to_thread call): that worker is detached instead of joining itself, finishes, and frees the
// state on its way out.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "executor/work_ring.hpp"
#include "loop/error_context.hpp"
#include "tulipa/executor.hpp"

namespace tulipa {

struct ThreadPoolExecutor::Impl {
  explicit Impl(ExecutorOptions opts) : options(std::move(opts)) {
    if (options.max_workers == 0) {
      options.max_workers = std::min<std::size_t>(32, std::max(1u, std::thread::hardware_concurrency()) + 4);
    }
  }
  ~Impl() {
    // Only reached once every worker let go of the state: joined, or the detached self-destroying one.
    for (auto& t : threads) {
      if (t.joinable()) t.detach();
    }
  }

  void worker_main(std::size_t index);
  void start_worker();  // mu held
  void call_exception_handler(ErrorContext& context) noexcept;

  ExecutorOptions options;  // options.exception_handler: under mu (set_exception_handler may run on any thread)
  mutable std::mutex mu;
  std::condition_variable cv;  // work queued, or shut down
  detail::WorkRing queue;
  std::vector<std::thread> threads;
  std::size_t idle = 0;     // workers waiting on cv
  std::size_t started = 0;  // workers ever started (threads is emptied by the joins)
  bool shut_down = false;
  std::mutex join_mu;  // a second shutdown(wait) waits for the first one's joins
  std::weak_ptr<Impl> self;
};

namespace {

thread_local const ThreadPoolExecutor::Impl* t_current_pool = nullptr;

// "<prefix>-<n>" in at most 15 bytes (Linux's limit for a thread name): the prefix is cut, the number kept.
std::string thread_name(const std::string& prefix, std::size_t n) {
  std::string suffix = "-" + std::to_string(n);
  std::size_t room = suffix.size() >= 15 ? 0 : 15 - suffix.size();
  return prefix.substr(0, room) + suffix;
}

// Signals a worker must keep: those the kernel sends to the faulting thread itself. Blocking them is undefined.
bool is_synchronous(int signum) {
  return signum == SIGSEGV || signum == SIGBUS || signum == SIGFPE || signum == SIGILL || signum == SIGTRAP ||
         signum == SIGSYS;
}

}  // namespace

void ThreadPoolExecutor::Impl::start_worker() {
  // The new thread inherits the creator's signal mask: block everything asynchronous around its creation, so that
  // no signal can land on the worker in the window before it could block them itself.
  sigset_t all, old;
  sigfillset(&all);
  for (int s = 1; s < NSIG; ++s) {
    if (is_synchronous(s)) sigdelset(&all, s);
  }
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::size_t index = started + 1;
  try {
    threads.emplace_back([state = self.lock(), index] { state->worker_main(index); });
    ++started;
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void ThreadPoolExecutor::Impl::worker_main(std::size_t index) {
  t_current_pool = this;
  const std::string name = thread_name(options.thread_name_prefix, index);
  pthread_setname_np(pthread_self(), name.c_str());
  std::unique_lock lock(mu);
  for (;;) {
    while (queue.empty() && !shut_down) {
      ++idle;
      cv.wait(lock);
      --idle;
    }
    if (queue.empty()) break;  // shut down and drained
    Callback work = queue.pop();
    lock.unlock();
    std::exception_ptr escaped;
    try {
      work();
    } catch (...) {
      escaped = std::current_exception();
    }
    // Reported once the catch block let go of the exception: the reference handed on is then the worker's last, so
    // a handler on another thread (the default executor's loop) may be the one that frees it.
    if (escaped) {
      ErrorContext context = detail::error_context("Exception in work run by " + name, std::move(escaped));
      call_exception_handler(context);
    }
    work.reset();  // captures die on the worker, outside the lock
    lock.lock();
  }
  t_current_pool = nullptr;
}

void ThreadPoolExecutor::Impl::call_exception_handler(ErrorContext& context) noexcept {
  try {
    ExecutorExceptionHandler handler;
    {
      std::lock_guard lock(mu);
      handler = options.exception_handler;  // a copy: set_exception_handler may replace it while this one runs
    }
    if (handler) {
      try {
        handler(context);
        return;
      } catch (...) {
        default_exception_handler(
            detail::error_context("Unhandled error in exception handler", std::current_exception()));
      }
    }
  } catch (...) {  // the copy's allocation failed: the default handler still reports
  }
  default_exception_handler(context);
}

ThreadPoolExecutor::ThreadPoolExecutor() : ThreadPoolExecutor(ExecutorOptions{}) {}

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers, std::string thread_name_prefix)
    : ThreadPoolExecutor(
          ExecutorOptions{.max_workers = max_workers, .thread_name_prefix = std::move(thread_name_prefix)}) {}

ThreadPoolExecutor::ThreadPoolExecutor(ExecutorOptions options) {
  auto state = std::make_shared<Impl>(std::move(options));
  state->self = state;
  impl_ = state;
}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  if (!impl_) return;
  if (in_worker_thread()) {
    // Destroyed from one of its own workers: join the others, let this one run out (it owns the state, see top).
    shutdown(false);
    std::lock_guard join(impl_->join_mu);
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(impl_->mu);
      threads.swap(impl_->threads);
    }
    for (auto& t : threads) {
      if (t.get_id() == std::this_thread::get_id()) {
        t.detach();
      } else if (t.joinable()) {
        t.join();
      }
    }
    return;
  }
  shutdown(true);
}

void ThreadPoolExecutor::submit(Callback work) {
  if (!work) throw std::invalid_argument("ThreadPoolExecutor::submit: empty callable");
  Impl& s = *impl_;
  std::unique_lock lock(s.mu);
  if (s.shut_down) throw ExecutorShutDown();
  // Start a worker when the idle ones cannot all be spoken for by work already queued (concurrent.futures'
  // _adjust_thread_count). If that fails with no worker at all, the work could never run: refuse it.
  if (s.queue.size() >= s.idle && s.started < s.options.max_workers) {
    try {
      s.start_worker();
    } catch (const std::system_error&) {
      if (s.threads.empty()) throw;
    }
  }
  s.queue.push(std::move(work));
  lock.unlock();
  s.cv.notify_one();
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_pending) {
  Impl& s = *impl_;
  if (wait && in_worker_thread()) {
    throw std::logic_error("ThreadPoolExecutor::shutdown(wait=true) from one of its own workers would join itself");
  }
  detail::WorkRing dropped;
  {
    std::lock_guard lock(s.mu);
    s.shut_down = true;
    if (cancel_pending) {
      while (!s.queue.empty()) dropped.push(s.queue.pop());
    }
  }
  s.cv.notify_all();
  while (!dropped.empty()) dropped.pop();  // destructors run here, outside the lock
  if (!wait) return;
  std::lock_guard join(s.join_mu);
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(s.mu);
    threads.swap(s.threads);
  }
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

bool ThreadPoolExecutor::is_shutdown() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->shut_down;
}

std::size_t ThreadPoolExecutor::max_workers() const noexcept { return impl_->options.max_workers; }

std::size_t ThreadPoolExecutor::thread_count() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->started;
}

std::size_t ThreadPoolExecutor::idle_workers() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->idle;
}

std::size_t ThreadPoolExecutor::pending() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->queue.size();
}

bool ThreadPoolExecutor::in_worker_thread() const noexcept { return t_current_pool == impl_.get(); }

void ThreadPoolExecutor::set_exception_handler(ExecutorExceptionHandler handler) {
  ExecutorExceptionHandler previous;  // destroyed outside the lock
  std::lock_guard lock(impl_->mu);
  previous = std::exchange(impl_->options.exception_handler, std::move(handler));
}

ExecutorExceptionHandler ThreadPoolExecutor::get_exception_handler() const {
  std::lock_guard lock(impl_->mu);
  return impl_->options.exception_handler;
}

void ThreadPoolExecutor::default_exception_handler(const ErrorContext& context) noexcept {
  try {
    const std::string line = detail::describe(context);
    std::fprintf(stderr, "tulipa: %s\n", line.c_str());
  } catch (...) {
    std::fputs("tulipa: exception escaped work submitted to a ThreadPoolExecutor\n", stderr);
  }
}

void ThreadPoolExecutor::call_exception_handler(ErrorContext context) noexcept {
  impl_->call_exception_handler(context);
}

}  // namespace tulipa
