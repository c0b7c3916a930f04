#include "coro/registry.hpp"

#include "tulipa/task.hpp"

namespace tulipa::detail {
TaskRegistry& task_registry(const EventLoop& loop) {
  // The loop's extension lookup compares a pointer or two; tasks are made on the loop's own thread.
  return const_cast<EventLoop&>(loop).extension<TaskRegistry>();
}

void TaskRegistry::on_close(EventLoop& loop) noexcept { close_tasks(loop); }

TaskRegistry::~TaskRegistry() {
  while (head) unlink(*head);
}

void TaskRegistry::link(TaskBase& t) noexcept {
  t.reg_prev_ = tail;
  t.reg_next_ = nullptr;
  (tail ? tail->reg_next_ : head) = &t;
  tail = &t;
  t.registered_ = true;
  ++count;
}

void TaskRegistry::unlink(TaskBase& t) noexcept {
  if (!t.registered_) return;
  (t.reg_prev_ ? t.reg_prev_->reg_next_ : head) = t.reg_next_;
  (t.reg_next_ ? t.reg_next_->reg_prev_ : tail) = t.reg_prev_;
  t.reg_prev_ = t.reg_next_ = nullptr;
  t.registered_ = false;
  --count;
}

}  // namespace tulipa::detail
