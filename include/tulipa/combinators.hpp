// Waiting for several things at once: gather, wait, as_completed, shield (asyncio's names and semantics).
//
// All of them take tasks (or coroutines, which they wrap in tasks on the running loop) and are awaitables that
// follow the cancellation protocol of coro.hpp. What cancelling the awaiting task does:
//   gather       cancels every unfinished child, waits until all are done, then raises CancelledError (asyncio).
//   wait         stops waiting (CancelledError); the tasks are not touched.
//   as_completed stops waiting (CancelledError); the tasks are not touched.
//   shield       stops waiting (CancelledError); the shielded task goes on, kept alive by the loop. If it later fails,
//                its exception is reported through the exception handler unless someone retrieves it.
#pragma once

#include <array>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <iosfwd>
#include <optional>
#include <span>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "tulipa/coro.hpp"
#include "tulipa/detail/combinators.hpp"
#include "tulipa/future.hpp"
#include "tulipa/handle.hpp"
#include "tulipa/task.hpp"

namespace tulipa {

// gather(..., return_exceptions): each child's outcome instead of raising the first error.
struct ReturnExceptions {};
inline constexpr ReturnExceptions return_exceptions{};

// One child's outcome: a value or an exception (a CancelledError for a cancelled child).
template <class T>
struct Outcome {
  std::optional<T> value;
  std::exception_ptr error;
  bool ok() const noexcept { return !error; }
};
template <>
struct Outcome<void> {
  std::exception_ptr error;
  bool ok() const noexcept { return !error; }
};

// gather(tasks): waits for all; returns their results in order (void for Task<void>). Without return_exceptions the
// first error (in completion order) is raised as soon as it happens; the other children keep running.
template <class T>
class [[nodiscard]] GatherAwaiter {
 public:
  explicit GatherAwaiter(std::vector<Task<T>> tasks, bool return_exceptions = false)
      : tasks_(std::move(tasks)), cores_(make_cores(tasks_)), core_(return_exceptions) {}
  bool await_ready() { return core_.await_ready(cores_); }
  bool await_suspend(std::coroutine_handle<> h) { return core_.await_suspend(h, cores_); }
  auto await_resume() {
    core_.check();
    if constexpr (std::is_void_v<T>) {
      for (auto& t : tasks_) t.result();
    } else {
      std::vector<T> out;
      out.reserve(tasks_.size());
      for (auto& t : tasks_) out.push_back(t.share_result());
      return out;
    }
  }
  std::vector<Outcome<T>> outcomes() {
    std::vector<Outcome<T>> out(tasks_.size());
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      auto& t = tasks_[i];
      if (t.cancelled()) {
        out[i].error = detail::FutureAccess::state(t)->cancelled_error();
      } else if (auto e = t.exception()) {
        out[i].error = e;
      } else if constexpr (!std::is_void_v<T>) {
        out[i].value.emplace(t.share_result());
      }
    }
    return out;
  }
  detail::GatherCore& core() noexcept { return core_; }

 private:
  static std::vector<detail::FutureCore*> make_cores(const std::vector<Task<T>>& ts) {
    std::vector<detail::FutureCore*> v;
    v.reserve(ts.size());
    for (auto& t : ts) v.push_back(detail::FutureAccess::state(t));
    return v;
  }
  std::vector<Task<T>> tasks_;
  std::vector<detail::FutureCore*> cores_;
  detail::GatherCore core_;
};

template <class T>
class [[nodiscard]] GatherOutcomesAwaiter {
 public:
  explicit GatherOutcomesAwaiter(std::vector<Task<T>> tasks) : inner_(std::move(tasks), true) {}
  bool await_ready() { return inner_.await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) { return inner_.await_suspend(h); }
  std::vector<Outcome<T>> await_resume() {
    inner_.core().check();
    return inner_.outcomes();
  }

 private:
  GatherAwaiter<T> inner_;
};

template <class T>
GatherAwaiter<T> gather(std::vector<Task<T>> tasks) {
  return GatherAwaiter<T>(std::move(tasks));
}
template <class T>
GatherAwaiter<T> gather(std::vector<Coro<T>> coros) {
  std::vector<Task<T>> tasks;
  tasks.reserve(coros.size());
  for (auto& c : coros) tasks.push_back(create_task(std::move(c)));
  return GatherAwaiter<T>(std::move(tasks));
}
template <class T>
GatherOutcomesAwaiter<T> gather(std::vector<Task<T>> tasks, ReturnExceptions) {
  return GatherOutcomesAwaiter<T>(std::move(tasks));
}

// gather(a, b, c): tasks or coroutines of different types; returns a tuple (std::monostate for void).
template <class... Ts>
class [[nodiscard]] GatherTupleAwaiter {
 public:
  explicit GatherTupleAwaiter(Task<Ts>... tasks)
      : tasks_(std::move(tasks)...),
        cores_(std::apply(
            [](auto&... t) {
              return std::array<detail::FutureCore*, sizeof...(Ts)>{detail::FutureAccess::state(t)...};
            },
            tasks_)),
        core_(false) {}
  bool await_ready() { return core_.await_ready(cores_); }
  bool await_suspend(std::coroutine_handle<> h) { return core_.await_suspend(h, cores_); }
  std::tuple<detail::gather_value_t<Ts>...> await_resume() {
    core_.check();
    return std::apply([](auto&... t) { return std::tuple<detail::gather_value_t<Ts>...>(take(t)...); }, tasks_);
  }

 private:
  template <class T>
  static detail::gather_value_t<T> take(Task<T>& t) {
    if constexpr (std::is_void_v<T>) {
      t.result();
      return {};
    } else {
      return t.share_result();
    }
  }
  std::tuple<Task<Ts>...> tasks_;
  std::array<detail::FutureCore*, sizeof...(Ts)> cores_;
  detail::GatherCore core_;
};

template <class... As>
  requires(sizeof...(As) > 0)
auto gather(As&&... as) {
  return GatherTupleAwaiter<typename detail::task_of_t<As>::value_type...>(detail::as_task(std::forward<As>(as))...);
}

// --- wait
enum class ReturnWhen { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };

template <class T>
struct WaitResult {
  std::vector<Task<T>> done;
  std::vector<Task<T>> pending;
};

// asyncio.wait: waits until `when` is satisfied or `timeout` passes (no TimeoutError: the split tells), and returns
// the tasks split into done and pending, each in input order. An empty set is std::invalid_argument.
template <class T>
class [[nodiscard]] WaitAwaiter {
 public:
  WaitAwaiter(std::vector<Task<T>> tasks, ReturnWhen when, std::optional<Duration> timeout)
      : tasks_(std::move(tasks)), cores_(cores_of(tasks_)), core_(when, timeout) {}
  bool await_ready() { return core_.await_ready(cores_); }
  bool await_suspend(std::coroutine_handle<> h) { return core_.await_suspend(h, cores_); }
  WaitResult<T> await_resume() {
    core_.await_resume();
    WaitResult<T> r;
    for (auto& t : tasks_) (t.done() ? r.done : r.pending).push_back(std::move(t));
    return r;
  }

 private:
  static std::vector<detail::FutureCore*> cores_of(const std::vector<Task<T>>& ts) {
    if (ts.empty()) throw std::invalid_argument("tulipa::wait: the set of tasks is empty");
    std::vector<detail::FutureCore*> v;
    for (auto& t : ts) v.push_back(detail::FutureAccess::state(t));
    return v;
  }
  std::vector<Task<T>> tasks_;
  std::vector<detail::FutureCore*> cores_;
  detail::WaitCore core_;
};

template <class T>
WaitAwaiter<T> wait(std::vector<Task<T>> tasks, ReturnWhen when = ReturnWhen::ALL_COMPLETED,
                    std::optional<Duration> timeout = std::nullopt) {
  return WaitAwaiter<T>(std::move(tasks), when, timeout);
}

// --- as_completed (3.13 style): yields the tasks themselves, in completion order.
//   auto ac = as_completed(std::move(tasks));
//   while (ac.remaining()) { Task<int> t = co_await ac.next(); use(t.result()); }
// With a timeout, next() raises TimeoutError once it passed. The object must stay where it was created (it is
// neither movable nor copyable) and must outlive its next() awaits.
template <class T>
class AsCompleted {
 public:
  AsCompleted(std::vector<Task<T>> tasks, std::optional<Duration> timeout);
  AsCompleted(const AsCompleted&) = delete;
  AsCompleted& operator=(const AsCompleted&) = delete;
  ~AsCompleted() {
    for (auto& n : nodes_)
      if (n.linked) detail::FutureAccess::state(*n.owner)->remove_node(n);
    timer_.cancel();
  }
  // Tasks not yet handed out by next().
  std::size_t remaining() const noexcept { return remaining_; }

  class [[nodiscard]] NextAwaiter final : public Suspension {
   public:
    explicit NextAwaiter(AsCompleted& ac) noexcept : ac_(ac) {}
    NextAwaiter(NextAwaiter&&) = default;
    ~NextAwaiter() {
      if (ac_.waiter_ == this) ac_.waiter_ = nullptr;
    }
    bool await_ready() const noexcept { return !ac_.ready_.empty() || ac_.timed_out_ || ac_.remaining_ == 0; }
    bool await_suspend(std::coroutine_handle<> h) {
      if (!park(h)) return false;
      ac_.waiter_ = this;
      return true;
    }
    Task<T> await_resume() {
      ac_.waiter_ = nullptr;
      check_cancelled();
      if (ac_.remaining_ == 0) throw std::logic_error("tulipa::as_completed: no task left");
      if (ac_.ready_.empty()) throw TimeoutError();
      Task<T> t = std::move(ac_.ready_.front());
      ac_.ready_.pop_front();
      --ac_.remaining_;
      return t;
    }
    void describe(std::ostream& os) const override;
    using Suspension::wake;

   private:
    Cancel on_cancel() noexcept override {
      ac_.waiter_ = nullptr;
      return Cancel::detached;
    }
    AsCompleted& ac_;
  };
  NextAwaiter next() { return NextAwaiter(*this); }

 private:
  struct Node : detail::DoneNode {
    AsCompleted* self;
    Task<T>* owner;
  };
  std::vector<Task<T>> tasks_;
  std::vector<Node> nodes_;
  std::deque<Task<T>> ready_;
  std::size_t remaining_;
  NextAwaiter* waiter_ = nullptr;
  Handle timer_;
  bool timed_out_ = false;
};

template <class T>
AsCompleted<T>::AsCompleted(std::vector<Task<T>> tasks, std::optional<Duration> timeout)
    : tasks_(std::move(tasks)), nodes_(tasks_.size()), remaining_(tasks_.size()) {
  for (std::size_t i = 0; i < tasks_.size(); ++i) {
    Node& n = nodes_[i];
    n.self = this;
    n.owner = &tasks_[i];
    n.fn = [](detail::DoneNode* d, detail::FutureCore&) noexcept {
      auto* node = static_cast<Node*>(d);
      AsCompleted* ac = node->self;
      ac->ready_.push_back(*node->owner);
      if (ac->waiter_) ac->waiter_->wake();
    };
    if (tasks_[i].done()) {
      ready_.push_back(tasks_[i]);
    } else {
      detail::FutureAccess::state(tasks_[i])->add_node(n);
    }
  }
  if (timeout && remaining_ > 0 && !tasks_.empty()) {
    timer_ = tasks_.front().get_loop().call_later(*timeout, [this] {
      timed_out_ = true;
      if (waiter_) waiter_->wake();
    });
  }
}

template <class T>
void AsCompleted<T>::NextAwaiter::describe(std::ostream& os) const {
  os << "as_completed().next() (" << ac_.remaining_ << " remaining)";
}

template <class T>
AsCompleted<T> as_completed(std::vector<Task<T>> tasks, std::optional<Duration> timeout = std::nullopt) {
  return AsCompleted<T>(std::move(tasks), timeout);
}

// --- shield
template <class T>
class [[nodiscard]] ShieldAwaiter final : public Suspension, public detail::DoneNode {
 public:
  explicit ShieldAwaiter(Future<T> t) noexcept : task_(std::move(t)) {}
  ShieldAwaiter(ShieldAwaiter&&) = default;
  ~ShieldAwaiter() {
    if (linked) detail::FutureAccess::state(task_)->remove_node(*this);
  }
  bool await_ready() const noexcept { return task_.done(); }
  bool await_suspend(std::coroutine_handle<> h) {
    if (!park(h)) return false;
    fn = [](detail::DoneNode* self, detail::FutureCore&) noexcept { static_cast<ShieldAwaiter*>(self)->wake(); };
    detail::FutureAccess::state(task_)->add_node(*this);
    return true;
  }
  T await_resume() {
    check_cancelled();
    return task_.share_result();
  }
  void describe(std::ostream& os) const override {
    os << "shield(";
    detail::FutureAccess::state(task_)->describe(os);
    os << ")";
  }

 private:
  Cancel on_cancel() noexcept override {
    detail::FutureAccess::state(task_)->remove_node(*this);
    return Cancel::detached;
  }
  Future<T> task_;
};

// shield(task or future): awaiting it returns its result, but cancelling the awaiting task does not cancel it.
template <class T>
ShieldAwaiter<T> shield(Future<T> task) {
  return ShieldAwaiter<T>(std::move(task));
}
template <class T>
ShieldAwaiter<T> shield(Task<T> task) {
  return ShieldAwaiter<T>(Future<T>(std::move(task)));
}
template <class T>
ShieldAwaiter<T> shield(Coro<T> coro) {
  return ShieldAwaiter<T>(create_task(std::move(coro)));
}
// A callable returning a coroutine (a lambda with captures): the shielded task owns it.
template <detail::CoroFactory F>
auto shield(F f) {
  return shield(create_task(std::move(f)));
}

}  // namespace tulipa
