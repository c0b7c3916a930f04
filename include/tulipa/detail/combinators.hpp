// Internals of tulipa/combinators.hpp (the library's, not part of the contract).
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
#include "tulipa/future.hpp"
#include "tulipa/handle.hpp"
#include "tulipa/task.hpp"

namespace tulipa {
enum class ReturnWhen;  // combinators.hpp
}  // namespace tulipa

namespace tulipa::detail {

// The untyped engine of gather(): waits on a set of futures. Lives in the awaiting frame.
class GatherCore : public Suspension {
 public:
  explicit GatherCore(bool return_exceptions) noexcept : return_exceptions_(return_exceptions) {}
  GatherCore(GatherCore&&) = default;
  ~GatherCore();
  // `children` must stay valid (and in place) from await_suspend until the awaiter is destroyed.
  bool await_ready(std::span<FutureCore* const> children) noexcept;
  bool await_suspend(std::coroutine_handle<> h, std::span<FutureCore* const> children);
  // Throws CancelledError if the gather was cancelled, or (without return_exceptions) the first error.
  void check();
  void describe(std::ostream& os) const override;

 private:
  struct Node : DoneNode {
    GatherCore* self;
  };
  Cancel on_cancel() noexcept override;
  void on_child_done(FutureCore& f) noexcept;
  std::span<FutureCore* const> children_;
  std::vector<Node> nodes_;
  std::size_t pending_ = 0;
  FutureCore* first_error_ = nullptr;
  bool return_exceptions_;
  bool cancel_requested_ = false;
};

template <class T>
using gather_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
Task<T> as_task(Task<T> t) {
  return t;
}
template <class T>
Task<T> as_task(Coro<T> c) {
  return create_task(std::move(c));
}
template <CoroFactory F>
auto as_task(F f) {
  return create_task(std::move(f));  // the task owns the callable
}
template <class A>
using task_of_t = decltype(as_task(std::declval<A>()));

// The untyped engine of wait(): waits until `when` is satisfied among a set of futures, or `timeout` passes. Lives
// in the awaiting frame.
class WaitCore : public Suspension {
 public:
  WaitCore(ReturnWhen when, std::optional<Duration> timeout) noexcept : when_(when), timeout_(timeout) {}
  WaitCore(WaitCore&&) = default;
  ~WaitCore();
  bool await_ready(std::span<FutureCore* const> children) noexcept;
  bool await_suspend(std::coroutine_handle<> h, std::span<FutureCore* const> children);
  void await_resume() const { check_cancelled(); }
  void describe(std::ostream& os) const override;

 private:
  struct Node : DoneNode {
    WaitCore* self;
  };
  Cancel on_cancel() noexcept override;
  bool satisfied() const noexcept;
  void unlink_all() noexcept;
  std::span<FutureCore* const> children_;
  std::vector<Node> nodes_;
  ReturnWhen when_;
  std::optional<Duration> timeout_;
  Handle timer_;
};

}  // namespace tulipa::detail
