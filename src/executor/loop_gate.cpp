// LoopGate: how worker threads post results to a loop without racing its destruction.
//
// EventLoop::call_soon_threadsafe still touches the loop after the callback became visible to it (the wake-up
// flags, the eventfd write), so a worker finishing a post while run() returns and destroys the loop would write
// into freed memory, or into an eventfd number the process has since reused (TSan found it with the DNS pool, which
// is never joined). Workers therefore post under the gate's mutex (the gate is shared with them), and the loop's
// close() closes the gate through a LoopExtension, which waits for a post in progress; after that, posts are refused
// and their results dropped. The gate outlives the loop for as long as a worker holds it.
#include <mutex>
#include <utility>
#include <vector>

#include "tulipa/loop.hpp"
#include "tulipa/to_thread.hpp"

namespace tulipa::detail {

class LoopGate {
 public:
  explicit LoopGate(EventLoop& loop) noexcept : loop_(&loop) {}
  bool post(Callback& fn) noexcept {
    std::lock_guard lock(mu_);
    if (!loop_) return false;
    try {
      loop_->call_soon_threadsafe(std::move(fn));
      return true;
    } catch (...) {
      return false;  // closed by hand without the hooks: the callback died inside, on this thread
    }
  }
  void close() noexcept {
    std::lock_guard lock(mu_);
    loop_ = nullptr;
  }

 private:
  std::mutex mu_;
  EventLoop* loop_;
};

namespace {

struct GateExtension final : LoopExtension {
  explicit GateExtension(EventLoop& loop) : gate(std::make_shared<LoopGate>(loop)) {}
  std::shared_ptr<LoopGate> gate;
  void on_close(EventLoop&) noexcept override { gate->close(); }
};

}  // namespace

// Loop thread only (to_thread and run_in_executor call it where they are awaited).
std::shared_ptr<LoopGate> loop_gate(EventLoop& loop) { return loop.extension<GateExtension>().gate; }

bool post_through(LoopGate& gate, Callback fn) noexcept { return gate.post(fn); }

}  // namespace tulipa::detail
