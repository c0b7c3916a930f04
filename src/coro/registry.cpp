#include "coro/registry.hpp"

#include <memory>
#include <mutex>
#include <utility>

namespace tulipa::detail {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<std::pair<const EventLoop*, std::unique_ptr<LoopCoro>>> entries;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: tasks may be released during static destruction
  return *r;
}

thread_local const EventLoop* tls_loop = nullptr;
thread_local LoopCoro* tls_state = nullptr;

}  // namespace

LoopCoro& loop_coro(const EventLoop& loop) {
  if (tls_loop == &loop) return *tls_state;
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  LoopCoro* found = nullptr;
  for (auto& [l, s] : r.entries) {
    if (l == &loop) {
      found = s.get();
      break;
    }
  }
  if (!found) {
    r.entries.emplace_back(&loop, std::make_unique<LoopCoro>());
    found = r.entries.back().second.get();
  }
  tls_loop = &loop;
  tls_state = found;
  return *found;
}

void LoopCoro::link(TaskBase& t) noexcept {
  t.reg_prev_ = tail;
  t.reg_next_ = nullptr;
  (tail ? tail->reg_next_ : head) = &t;
  tail = &t;
  t.registry_ = this;
  ++count;
}

void LoopCoro::unlink(TaskBase& t) noexcept {
  if (t.registry_ != this) return;
  (t.reg_prev_ ? t.reg_prev_->reg_next_ : head) = t.reg_next_;
  (t.reg_next_ ? t.reg_next_->reg_prev_ : tail) = t.reg_prev_;
  t.reg_prev_ = t.reg_next_ = nullptr;
  t.registry_ = nullptr;
  --count;
}

}  // namespace tulipa::detail
