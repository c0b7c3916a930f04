#include "coro/registry.hpp"

#include "tulipa/task.hpp"

namespace tulipa::detail {
LoopCoro& loop_coro(const EventLoop& loop) {
  // The loop's extension lookup compares a pointer or two; tasks are made on the loop's own thread.
  return const_cast<EventLoop&>(loop).extension<LoopCoro>();
}

void LoopCoro::on_close(EventLoop& loop) noexcept { close_tasks(loop); }

LoopCoro::~LoopCoro() {
  while (head) unlink(*head);
}

void LoopCoro::link(TaskBase& t) noexcept {
  t.reg_prev_ = tail;
  t.reg_next_ = nullptr;
  (tail ? tail->reg_next_ : head) = &t;
  tail = &t;
  t.registered_ = true;
  ++count;
}

void LoopCoro::unlink(TaskBase& t) noexcept {
  if (!t.registered_) return;
  (t.reg_prev_ ? t.reg_prev_->reg_next_ : head) = t.reg_next_;
  (t.reg_next_ ? t.reg_next_->reg_prev_ : tail) = t.reg_prev_;
  t.reg_prev_ = t.reg_next_ = nullptr;
  t.registered_ = false;
  --count;
}

}  // namespace tulipa::detail
