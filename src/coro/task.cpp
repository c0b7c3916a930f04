// TaskBase: how the loop drives a task (asyncio's Task.__step and __wakeup), cancellation delivery, await chains.
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "coro/registry.hpp"
#include "loop/error_context.hpp"
#include "tulipa/task.hpp"

namespace tulipa {
namespace detail {

thread_local constinit TaskBase* tls_current_task __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

// The step callback: holds a reference on the task so that a step scheduled on a loop that is then closed (its
// callbacks dropped) releases the task instead of leaking it. 8 bytes: stored inline in the Callback.
struct StepCall {
  TaskBase* t;
  explicit StepCall(TaskBase* task) noexcept : t(task) { t->retain(); }
  StepCall(StepCall&& o) noexcept : t(std::exchange(o.t, nullptr)) {}
  StepCall(const StepCall&) = delete;
  ~StepCall() {
    if (t) t->release();
  }
  void operator()() { t->step(); }
};

// A readable coroutine name from what std::source_location reports inside it. g++ names the actor
// "void NAME(SIGNATURE::_Z<mangled>.Frame*)": "void ns::f(ns::f(int)::_ZN2ns1fEi.Frame*)" -> "ns::f(int)",
// "void main()::<lambda(double)>::operator()(main()::<lambda(double)>::_Z...)" -> "main()::<lambda(double)>";
// sometimes the plain "R NAME(ARGS)" -> "NAME(ARGS)". Template arguments that drag frame types along are elided.
std::string coroutine_name(const char* fn) {
  std::string s = fn ? fn : "";
  auto mangled = s.rfind("::_Z");
  if (mangled != std::string::npos) {
    s.resize(mangled);
    if (s.rfind("void ", 0) == 0) s.erase(0, 5);
    auto op = s.find("::operator()(");
    if (s.find("<lambda") != std::string::npos && op != std::string::npos) {
      s.erase(0, op + 13);
    } else if (auto open = s.find('('); open != std::string::npos) {
      s.erase(0, open + 1);
    }
    if (s.find(".Frame*") != std::string::npos) {  // template arguments naming other frames: keep the name only
      auto cut = s.find_first_of("<(");
      s = s.substr(0, cut) + (s[cut] == '<' ? "<...>(...)" : "(...)");
    }
    return s;
  }
  auto open = s.find('(');
  if (open == std::string::npos) return s;
  auto space = s.rfind(' ', open);
  return space == std::string::npos ? s : s.substr(space + 1);
}

}  // namespace

EventLoop& TaskBase::loop() const noexcept { return core().loop(); }
void TaskBase::on_root_done() noexcept { core().task_root_done(); }
void TaskBase::destroy_root() noexcept { core().task_destroy_root(); }
std::source_location TaskBase::created_at() const noexcept {
  return extras_ ? extras_->created_at : std::source_location{};
}
bool TaskBase::done() const noexcept { return finished_; }
void TaskBase::retain() noexcept { core().ref(); }
void TaskBase::release() noexcept { core().unref(); }

bool TaskBase::park(Suspension* s, std::coroutine_handle<> h) {
  if (must_cancel_) {  // a cancellation waited for this suspension point: deliver it here
    must_cancel_ = false;
    s->state_ = Suspension::State::cancelled;
    return false;
  }
  s->state_ = Suspension::State::parked;
  leaf_ = s;
  resume_point_ = h;
  return true;
}

TaskBase::Extras& TaskBase::extras() {
  if (!extras_) extras_ = std::make_unique<Extras>();
  return *extras_;
}

const std::string& TaskBase::cancel_message() const noexcept {
  static const std::string empty;
  return extras_ ? extras_->cancel_message : empty;
}

const std::string& TaskBase::name() const noexcept {
  if (!extras_) extras_ = std::make_unique<Extras>();
  if (!extras_->named) {
    extras_->name = "Task-" + std::to_string(id_);
    extras_->named = true;
  }
  return extras_->name;
}

void TaskBase::set_name(std::string name) {
  Extras& x = extras();
  x.name = std::move(name);
  x.named = true;
}

void TaskBase::wake_from(Suspension* s) noexcept {
  s->state_ = Suspension::State::woken;
  schedule_step();
}

bool TaskBase::cancel(std::string msg) {
  if (finished_) {
    core().mark_retrieved();  // asyncio: cancel() on a done task silences "exception was never retrieved"
    return false;
  }
  ++cancel_requests_;
  if (!msg.empty() || extras_) extras().cancel_message = std::move(msg);
  // A cancellation already on its way to the current suspension point absorbs this one (asyncio delivers one
  // CancelledError for several cancel() calls before the task runs).
  if (leaf_ && leaf_->state_ == Suspension::State::cancelled) return true;
  if (leaf_ && leaf_->state_ == Suspension::State::parked) {
    deliver_cancel(leaf_);
    return true;
  }
  must_cancel_ = true;
  return true;
}

void TaskBase::deliver_cancel(Suspension* s) noexcept {
  switch (s->on_cancel()) {
    case Suspension::Cancel::detached:
      s->state_ = Suspension::State::cancelled;
      schedule_step();
      return;
    case Suspension::Cancel::forwarded:
      return;
    case Suspension::Cancel::refused:
      must_cancel_ = true;  // delivered at the next suspension point
      return;
  }
}

int TaskBase::uncancel() noexcept {
  if (cancel_requests_ > 0) --cancel_requests_;
  // Python 3.13: when no request is left, a cancellation not yet delivered is withdrawn (else a timeout that fired
  // just as its body finished would hit the task later, outside the scope).
  if (cancel_requests_ == 0) must_cancel_ = false;
  return cancel_requests_;
}

void TaskBase::schedule_step() {
  if (step_scheduled_ || finished_) return;
  step_scheduled_ = true;
  try {
    loop().call_soon(StepCall(this));
  } catch (...) {
    step_scheduled_ = false;  // the loop is closed: the task can never run again (close_tasks reports it)
  }
}

void TaskBase::step() {
  step_scheduled_ = false;
  if (finished_) return;
  TaskBase* prev = tls_current_task;
  tls_current_task = this;
  if (!started_) {
    started_ = true;
    if (must_cancel_) {  // cancelled before it ever ran: its coroutine never runs (asyncio throws into it at once)
      must_cancel_ = false;
      destroy_root();
      tls_current_task = prev;
      complete(std::make_exception_ptr(CancelledError(cancel_message())));
      return;
    }
  }
  leaf_ = nullptr;
  resume_point_.resume();
  tls_current_task = prev;
  if (root_ && root_.done()) on_root_done();
}

void TaskBase::complete(std::exception_ptr e) noexcept {
  finished_ = true;
  leaf_ = nullptr;
  root_ = {};
  resume_point_ = {};
  frame_ = nullptr;
  if (!e && must_cancel_) {  // cancelled right before its coroutine returned: asyncio marks it cancelled
    must_cancel_ = false;
    try {
      e = std::make_exception_ptr(CancelledError(cancel_message()));
    } catch (...) {
    }
  }
  FutureCore& c = core();
  const auto state = e && is_cancelled_error(e) ? FutureCore::State::cancelled : FutureCore::State::finished;
  c.finish(state, std::move(e));
  if (registered_) task_registry(c.loop()).unlink(*this);
  c.unref();  // the loop's reference; may destroy the task
}

void TaskBase::print_stack(std::ostream& os) const {
  os << "Task '" << name() << "'";
  if (finished_) {
    os << (core().cancelled() ? " cancelled" : " finished");
  } else if (tls_current_task == this) {
    os << " running";
  } else if (!started_) {
    os << " not started";
  } else {
    os << " pending";
  }
  if (cancel_requests_ > 0) os << " (cancelling: " << cancel_requests_ << ")";
  if (auto at = created_at(); at.line() != 0) os << ", created at " << at.file_name() << ':' << at.line();
  os << '\n';
  if (extras_ && !extras_->created_by.empty()) {
    const std::string& created_by_ = extras_->created_by;
    os << "  created by:\n";
    std::size_t begin = 0;
    while (begin < created_by_.size()) {
      auto end = created_by_.find('\n', begin);
      if (end == std::string::npos) end = created_by_.size();
      os << "    | " << std::string_view(created_by_).substr(begin, end - begin) << '\n';
      begin = end + 1;
    }
  }
  if (finished_) return;
  std::vector<const PromiseBase*> frames;
  for (const PromiseBase* p = frame_; p; p = p->parent()) frames.push_back(p);
  for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
    const PromiseBase* p = *it;
    if (p->where_.line() == 0) {
      os << "  (a coroutine before its first co_await)\n";
      continue;
    }
    os << "  " << coroutine_name(p->where_.function_name()) << " at " << p->where_.file_name() << ':'
       << p->where_.line() << '\n';
  }
  if (leaf_) {
    os << "    awaiting ";
    leaf_->describe(os);
    if (leaf_->state_ == Suspension::State::woken) os << " [done, resuming]";
    os << '\n';
  }
}

void start_task(TaskBase& task, EventLoop& loop, std::string name, std::source_location where) {
  TaskRegistry& reg = task_registry(loop);
  ++reg.created;
  task.id_ = reg.created;
  if (!name.empty()) task.set_name(std::move(name));
  if (loop.get_debug()) {
    task.extras().created_at = where;
    if (tls_current_task) {
      std::ostringstream os;
      tls_current_task->print_stack(os);
      task.extras().created_by = os.str();
    }
  }
  task.retain();  // the loop's reference, dropped when the task finishes
  reg.link(task);
  task.schedule_step();
}

}  // namespace detail

void detail::TaskBase::teardown() noexcept {
  if (finished_) return;
  leaf_ = nullptr;
  destroy_root();  // destructors of every frame and awaiter run; awaiters unregister from what they waited on
  complete(std::make_exception_ptr(CancelledError("Task was destroyed but it is pending")));
}

bool AnyTask::cancelled() const noexcept { return t_->core().cancelled(); }
std::exception_ptr AnyTask::exception() const { return t_->core().exception(); }

AnyTask current_task() noexcept { return AnyTask(detail::tls_current_task); }

std::vector<AnyTask> all_tasks(EventLoop& loop) {
  std::vector<AnyTask> out;
  auto& reg = detail::task_registry(loop);
  out.reserve(reg.count);
  for (detail::TaskBase* t = reg.head; t; t = t->reg_next_)
    if (!t->done()) out.emplace_back(t);
  return out;
}

void dump_tasks(EventLoop& loop, std::ostream& os) {
  auto tasks = all_tasks(loop);
  os << tasks.size() << " task" << (tasks.size() == 1 ? "" : "s") << " alive\n";
  for (auto& t : tasks) t.print_stack(os);
}

std::size_t close_tasks(EventLoop& loop) {
  std::size_t n = 0;
  for (auto& t : all_tasks(loop)) {
    detail::TaskBase* b = t.base();
    if (b->done() || b == detail::tls_current_task) continue;
    ErrorContext ctx = detail::error_context("Task was destroyed but it is pending");
    ctx.task = b->name();
    ctx.scheduled_at = b->created_at();
    loop.call_exception_handler(ctx);
    b->teardown();
    ++n;
  }
  return n;
}

}  // namespace tulipa

namespace tulipa::detail {
// The per-task budget (see TaskBase): an idle server connection keeps one of these.
static_assert(sizeof(TaskState<void>) <= 112, "TaskState<void> grew: every connection-handling task pays for it");
}  // namespace tulipa::detail
