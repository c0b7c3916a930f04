// Operation-level I/O on the io_uring backend: what UringSelector offers beside readiness.
//
// A completion transport (net/uring_socket_transport.hpp), a server's listener and the loop's wake-up and signal reads
// submit their own operations (multishot accept, multishot receive into provided buffers, sendmsg, read) through
// UringOps and get each completion back through UringTarget::on_completion. Like the selector's polls, every SQE is
// only prepared while callbacks run and submitted in the one io_uring_enter that waits, once per loop pass; the
// completions are delivered inside select(), right after reaping (CQ overflow flushed first, so none is lost).
//
// Provided buffers: one buffer ring per selector (group 0, UringSelector's `buffers` × 8 KiB of memory), set up by
// hand on first use (mmap, io_uring_register_buf_ring, io_uring_buf_ring_init: liburing 2.3 has no
// io_uring_setup_buf_ring). Where the kernel consumes buffers incrementally (IOU_PBUF_RING_INC, Linux 6.12) the
// memory is cut into 64 KiB buffers and successive receives (of any connection) are packed one after the other into
// the buffer at the ring's head, so a 64-byte message uses 64 bytes, not a buffer, and a 64 KiB message arrives in
// one or two completions instead of eight; elsewhere it is cut into 8 KiB buffers, one per completion. A receive
// completion names its buffer (IORING_CQE_F_BUFFER, id in the upper 16 bits of the flags); received() says where its
// bytes are, and release() hands the buffer back to the kernel once the kernel no longer fills it (no
// IORING_CQE_F_BUF_MORE). The memory is shared by every connection of the loop, so an idle connection holds none.
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
  // The bytes of a completion that named a provided buffer (res > 0, IORING_CQE_F_BUFFER). Call it once for every
  // such completion, teardown included, as it is delivered (with incremental buffers that is how the place of each
  // receive's bytes is known); they stay valid until release(flags), once for each received() (later if they are
  // held: the kernel only appends to a buffer, and it goes back once every piece of it was released).
  std::span<std::byte> received(int res, unsigned flags) noexcept;
  void release(unsigned flags) noexcept;
  // Whether receives are packed into incrementally consumed buffers (IOU_PBUF_RING_INC), and the buffers' size.
  bool incremental_buffers() const noexcept;
  std::size_t buffer_bytes() const noexcept;
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
