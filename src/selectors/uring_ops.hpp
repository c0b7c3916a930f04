// Operation-level I/O on the io_uring backend: what UringSelector offers beside readiness.
//
// A completion transport (net/uring_socket_transport.hpp), a server's listener and the loop's wake-up and signal reads
// submit their own operations (multishot accept, multishot receive into provided buffers, sendmsg, read) through
// UringOps and get each completion back through UringTarget::on_completion. Like the selector's polls, every SQE is
// only prepared while callbacks run and submitted in the one io_uring_enter that waits, once per loop pass; the
// completions are delivered inside select(), right after reaping (CQ overflow flushed first, so none is lost).
//
// Provided buffers: one buffer ring per selector (group 0, UringSelector's `buffers` of `buffer_size` bytes), set up
// by hand on first use (mmap, io_uring_register_buf_ring, io_uring_buf_ring_init: liburing 2.3 has no
// io_uring_setup_buf_ring). A receive completion names the buffer it filled (IORING_CQE_F_BUFFER, id in the upper
// 16 bits of the flags); the buffer is the receiver's until it calls recycle(id), which hands it back to the kernel.
// The memory is shared by every connection of the loop, so an idle connection holds no receive buffer.
//
// Lifetimes (the rule that keeps the kernel off freed memory): a target must stay alive, with every buffer its
// operations read or write, until the final completion of each operation it submitted arrived (a completion
// without IORING_CQE_F_MORE). Ending early means cancel(), then waiting for that final completion. When the ring
// itself goes (the selector is destroyed, after the loop closed), every operation still in flight is cancelled and
// its final completion delivered with `teardown` set: the target then releases itself and calls nothing else.
// A sendmsg's msghdr and iovec array only need to live until submission (IORING_FEAT_SUBMIT_STABLE), so they come
// from scratch(), which is reused after each submission; the bytes they point to must live until the completion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

struct io_uring_sqe;
struct msghdr;
struct iovec;

namespace tulipa {
class EventLoop;
}

namespace tulipa::detail {

struct UringState;

class UringTarget {
 public:
  // `op` is what the target passed to prepare() (0..7); `res` and `flags` are the CQE's.
  virtual void on_completion(unsigned op, int res, unsigned flags, bool teardown) noexcept = 0;

 protected:
  ~UringTarget() = default;
};

class UringOps {
 public:
  static constexpr unsigned buffer_size = 8 * 1024;  // times UringSelector's `buffers` (512: 4 MiB per loop)
  static constexpr std::uint16_t buffer_group = 0;

  explicit UringOps(UringState& state) noexcept : state_(&state) {}

  // An SQE to fill in; its completion goes to `target` as `op`. Submitted at the next select (or earlier when the
  // submission queue is full). Throws std::system_error if the ring refuses even then.
  io_uring_sqe* prepare(UringTarget* target, unsigned op);
  // Asks the kernel to cancel `target`'s operation `op` (its final completion still arrives). Submitted at the next
  // select, and posts no completion of its own.
  void cancel(UringTarget* target, unsigned op);
  // Sets the provided-buffer ring up if it is not yet. Throws std::system_error if the kernel refuses it.
  void ensure_buffers();
  // The memory of provided buffer `id` (buffer_size bytes), and giving it back to the kernel.
  std::span<std::byte> buffer(unsigned id) const noexcept;
  void recycle(unsigned id) noexcept;
  // Closes `fd` once no prepared SQE can name it any more: at once when the SQ is empty (it is submitted first when
  // the ring runs on this thread), else right after the next submission. (An fd closed with an SQE still queued
  // would be looked up by number at submission: EBADF, or worse, the next socket given that number.)
  void close_fd(int fd) noexcept;
  // How many operation completions the last select() delivered (I/O happened even when it returned no event).
  std::size_t delivered() const noexcept;
  // A receive ended for want of a free buffer (ENOBUFS): counted for UringSelector::buffer_shortages().
  void count_shortage() noexcept;
  // A target with one operation kept in flight for the ring's whole life (the loop's wake-up read, its signal-pipe
  // read). When another thread runs the loop and the ring is rebuilt, each is told with a final -ECANCELED completion
  // and submits again.
  void add_resident(UringTarget* target);
  // A msghdr with room for `iov_count` iovecs (msg_iov points at them), valid until the next submission.
  msghdr* scratch(int iov_count);

 private:
  UringState* state_;
};

// The operations of `loop`'s backend: null unless it runs on io_uring (then transports use readiness).
UringOps* uring_ops(EventLoop& loop) noexcept;

}  // namespace tulipa::detail
