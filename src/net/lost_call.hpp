// LostCall: the loop callback that ends a transport (its connection_lost step), and that owns the transport until it
// has run. Run, it calls `t->call_connection_lost(exc)`; dropped unrun (the loop closed with it pending: close()
// drops pending callbacks without running them), its destructor makes the same call, so the protocol still hears of
// the end and the transport, its fd and whatever it holds are freed rather than leaked with the loop.
//
// T::call_connection_lost(std::exception_ptr) may be private (befriend `template <class> friend class LostCall`); it
// must end the object (typically `delete this`) and may schedule more work: during close() a callback scheduled
// from a dropped one is itself dropped, and so run, in the next round.
#pragma once

#include <exception>
#include <utility>

namespace tulipa::detail {

template <class T>
class LostCall {
 public:
  LostCall(T* t, std::exception_ptr exc) noexcept : t_(t), exc_(std::move(exc)) {}
  LostCall(LostCall&& o) noexcept : t_(std::exchange(o.t_, nullptr)), exc_(std::move(o.exc_)) {}
  LostCall& operator=(LostCall&&) = delete;
  ~LostCall() {
    if (t_) t_->call_connection_lost(std::move(exc_));
  }
  void operator()() { std::exchange(t_, nullptr)->call_connection_lost(std::move(exc_)); }

 private:
  T* t_;
  std::exception_ptr exc_;
};

}  // namespace tulipa::detail
