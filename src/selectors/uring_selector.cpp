// UringSelector: the selector contract on io_uring, with one one-shot IORING_OP_POLL_ADD per registered fd.
//
// Why one-shot polls and not multishot ones: the loop relies on level triggering (a watcher that reads part of what
// is buffered is called again on the next pass). A one-shot poll checks readiness when it is armed, so re-arming
// after each completion is level triggering; a multishot poll only reports new wake-ups, i.e. edge triggering.
// Re-arming costs no system call of its own: every change (register, modify, unregister, the re-arms of the fds
// reported last time) is only noted while the loop runs callbacks, and turned into SQEs and submitted in the same
// io_uring_enter that waits for completions, once per loop pass. A modify then unregister in one pass costs nothing.
//
// The ring: SINGLE_ISSUER + DEFER_TASKRUN (completions are posted only when we wait, on our thread: no
// interrupts while callbacks run), COOP_TASKRUN where DEFER_TASKRUN is missing; each flag is dropped when the kernel
// refuses it (EINVAL). The ring starts disabled and is enabled by the first select(), so the thread that runs the
// loop, not the one that built it, is the issuer; a select() from another thread later (a loop run on thread A,
// then on thread B) rebuilds the ring and re-arms every fd.
//
// Completions: each poll's user_data is (generation << 32 | fd), with a generation counter bumped on every arm, so a
// completion for an fd that was since unregistered, modified or re-registered (closed and reused) is recognised as
// stale and dropped. CQ overflow loses nothing: the kernel keeps what did not fit (IORING_FEAT_NODROP) and select()
// flushes and reaps until neither the CQ nor the overflow list holds anything. Poll removals are posted with
// IOSQE_CQE_SKIP_SUCCESS and an internal tag.
//
// A difference from epoll worth knowing: an armed poll holds a reference to its file, so a socket closed without
// unregistering stays open until the poll completes; the loop always unwatches before closing, and the removal is
// submitted at the start of the next select().
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "selectors/checks.hpp"
#include "selectors/fd_map.hpp"
#include "selectors/timeout.hpp"
#include "selectors/uring_ops.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/selector.hpp"

#if TULIPA_HAVE_URING
#include <liburing.h>
#endif

namespace tulipa {

#if TULIPA_HAVE_URING

namespace detail {

namespace {

// 16 bytes per fd, like the epoll selector's entry.
struct UringEntry {
  void* data = nullptr;
  std::uint32_t generation = 0;  // of the poll in flight (meaningful while `armed` is not none)
  std::uint8_t events = 0;       // registered interest (Events), never none while occupied
  std::uint8_t armed = 0;        // the mask of the poll in flight; 0: none in flight
  bool queued = false;           // in UringState::pending: to be (re-)armed at the next select
  bool occupied() const noexcept { return events != 0; }
};
static_assert(sizeof(UringEntry) <= 16);

constexpr std::uint64_t internal_tag = std::uint64_t(1) << 63;  // removals; their completions are dropped
// Operations (uring_ops.hpp): the target's address (8-byte aligned, below 2^47) with the op number in its low bits.
constexpr std::uint64_t op_tag = std::uint64_t(1) << 62;

std::uint64_t user_data(int fd, std::uint32_t generation) noexcept {
  return (std::uint64_t(generation & 0x3fffffffu) << 32) | std::uint32_t(fd);
}

std::uint64_t op_data(UringTarget* target, unsigned op) noexcept {
  return op_tag | reinterpret_cast<std::uintptr_t>(target) | (op & 7u);
}

struct Completion {
  UringTarget* target;
  unsigned op;
  int res;
  unsigned flags;
};

// A msghdr and its iovecs, handed out per send and reused after each submission.
struct Scratch {
  msghdr msg;
  iovec iov[16];
};

unsigned to_poll(std::uint8_t events) noexcept {
  unsigned mask = 0;
  if (events & std::uint8_t(Events::read)) mask |= POLLIN | POLLRDHUP;
  if (events & std::uint8_t(Events::write)) mask |= POLLOUT;
  return mask;
}

Events from_poll(int res, std::uint8_t registered) noexcept {
  const Events interest = Events(registered);
  if (res < 0) return interest;  // the poll itself failed: the owner tries its operation and meets the error
  const unsigned mask = unsigned(res);
  Events ready = Events::none;
  if (mask & (POLLERR | POLLHUP | POLLNVAL)) ready = interest;
  if (mask & (POLLIN | POLLRDHUP | POLLPRI)) ready = ready | Events::read;
  if (mask & POLLOUT) ready = ready | Events::write;
  return ready & interest;
}

}  // namespace

struct UringState {
  io_uring ring{};
  bool ring_open = false;
  bool enabled = false;
  std::thread::id issuer{};
  unsigned entries = 0;
  unsigned flags = 0;  // the setup flags the kernel accepted
  std::uint32_t next_generation = 0;
  FdMap<UringEntry> table;
  std::vector<int> pending;             // fds to (re-)arm at the next select
  std::vector<std::uint64_t> removals;  // polls to cancel at the next select
  std::vector<SelectorEvent> ready;     // what select() lends out
  std::uint64_t overflow_flushes = 0;

  std::size_t inflight = 0;  // polls submitted or prepared whose completion has not been reaped

  // Operations (uring_ops.hpp).
  UringOps ops{*this};
  std::size_t ops_inflight = 0;         // operations prepared whose final completion was not delivered
  std::vector<Completion> completions;  // reaped, delivered at the end of select()
  std::vector<std::unique_ptr<Scratch>> scratch;
  std::size_t scratch_used = 0;
  std::size_t delivered = 0;            // completions delivered by the last select()
  std::vector<UringTarget*> residents;  // UringOps::add_resident
  unsigned buffer_units = 512;          // UringSelector's `buffers`: 8 KiB units of provided-buffer memory
  unsigned buffer_count = 0;            // set by ensure_buffers()
  std::size_t buffer_size = 0;
  bool incremental = false;           // IOU_PBUF_RING_INC: receives packed into the head buffer
  std::vector<std::uint32_t> filled;  // incremental: bytes of each buffer the kernel has used
  std::vector<std::uint16_t> users;   // incremental: received() pieces of each buffer not released yet
  std::vector<std::uint8_t> done;     // incremental: the kernel no longer fills it (a completion without BUF_MORE)
  std::uint64_t buffer_shortages = 0;
  io_uring_buf_ring* buf_ring = nullptr;
  std::byte* buffers = nullptr;

  ~UringState() {
    close_ring();
    free_buffers();
  }

  void free_buffers() noexcept {
    if (buf_ring) ::munmap(buf_ring, buffer_count * sizeof(io_uring_buf));
    if (buffers) ::munmap(buffers, std::size_t(buffer_count) * buffer_size);
    buf_ring = nullptr;
    buffers = nullptr;
  }

  // Hands a reaped operation's completion to the list (or straight to its target while tearing down).
  void note_op(std::uint64_t ud, int res, unsigned flags, bool teardown) noexcept {
    auto* target = reinterpret_cast<UringTarget*>(ud & ~(op_tag | 7u));
    const unsigned op = unsigned(ud & 7u);
    if (!(flags & IORING_CQE_F_MORE) && ops_inflight > 0) --ops_inflight;
    if (teardown) {
      target->on_completion(op, res, flags, true);
    } else {
      completions.push_back(Completion{target, op, res, flags});
    }
  }

  std::vector<int> close_after_submit;  // UringOps::close_fd

  // The SQ is empty: every msghdr handed out was consumed, every fd whose close waited can go.
  void submitted() noexcept {
    scratch_used = 0;
    for (int fd : close_after_submit) ::close(fd);
    close_after_submit.clear();
  }

  // Operations prepared but never submitted: made no-ops (their fds may be closed already), or, when the ring was
  // never enabled (nothing will be submitted), given a final cancellation at once.
  void neutralise_unsubmitted() noexcept {
    io_uring_sq& sq = ring.sq;
    for (unsigned i = *sq.khead; i != sq.sqe_tail; ++i) {
      io_uring_sqe& s = sq.sqes[i & *sq.kring_mask];
      const std::uint64_t ud = s.user_data;
      if (!enabled) {
        if (ud & op_tag && !(ud & internal_tag)) note_op(ud, -ECANCELED, 0, true);
        continue;
      }
      io_uring_prep_nop(&s);
      s.user_data = ud;
    }
  }

  // Cancels every poll still in flight and reaps the cancellations before the ring goes: a ring torn down with
  // requests in flight leaves the kernel cancelling them from task work later, which interrupts this thread's next
  // blocking wait in another selector with a spurious early return.
  void close_ring() noexcept {
    if (!ring_open) return;
    neutralise_unsubmitted();
    if (enabled && inflight + ops_inflight > 0 && std::this_thread::get_id() == issuer) {
      // Completions reaped but not delivered yet (a select() that threw) go first, as teardown.
      for (const Completion& c : completions) c.target->on_completion(c.op, c.res, c.flags, true);
      completions.clear();
      for (int rounds = 0; inflight + ops_inflight > 0 && rounds < 64; ++rounds) {
        io_uring_sqe* s = io_uring_get_sqe(&ring);
        if (s == nullptr) {
          io_uring_submit(&ring);
          continue;
        }
        io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(s, internal_tag);
        if (io_uring_submit_and_wait(&ring, 1) < 0) break;
        drain_quietly();
      }
    }
    io_uring_queue_exit(&ring);
    ring_open = false;
    enabled = false;
    submitted();
  }

  void drain_quietly() noexcept {
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
      if (ud & internal_tag) continue;
      if (ud & op_tag) {
        note_op(ud, cqe->res, cqe->flags, true);
      } else if (inflight > 0) {
        --inflight;
      }
    }
    io_uring_cq_advance(&ring, seen);
  }

  // Tries the best flags first and drops what the kernel refuses. Throws std::system_error when io_uring itself is
  // refused (ENOSYS: no io_uring; EPERM: a seccomp profile or kernel.io_uring_disabled; ENOMEM: locked memory).
  void open_ring() {
    const unsigned wanted[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    for (unsigned f : wanted) {
      io_uring_params params{};
      params.flags = f | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
      params.cq_entries = entries * 4;
      rc = io_uring_queue_init_params(entries, &ring, &params);
      if (rc == 0) {
        flags = f;
        ring_open = true;
        enabled = (f & IORING_SETUP_R_DISABLED) == 0;
        if (enabled) issuer = std::this_thread::get_id();
        return;
      }
      if (rc != -EINVAL) break;
    }
    throw std::system_error(-rc, std::system_category(), "io_uring_queue_init");
  }

  // Called by select() on the thread that runs it.
  void bind_to_this_thread() {
    const auto me = std::this_thread::get_id();
    if (enabled && ((flags & IORING_SETUP_SINGLE_ISSUER) == 0 || issuer == me)) return;
    if (enabled) {
      // Another thread runs the loop now: a single-issuer ring refuses it. Build a new ring and arm everything again
      // (the old ring's polls die with it). Operations cannot move: their buffers are in flight on the old ring (or,
      // for the provided buffers, held by connections); only the resident operations (the loop's wake-up read and
      // signal-pipe read, whose buffers live as long as the loop) are submitted again on the new ring.
      if (ops_inflight > residents.size() || buf_ring != nullptr)
        throw std::logic_error(
            "io_uring loop: run by another thread after completion transports were made on it (a loop on io_uring "
            "that served connections stays on its thread)");
      close_ring();  // from the wrong thread: the kernel cancels what is in flight itself
      inflight = 0;
      ops_inflight = 0;
      removals.clear();
      open_ring();
      for (UringTarget* r : residents) r->on_completion(0, -ECANCELED, 0, false);  // each arms itself again
      table.for_each([&](int fd, UringEntry& e) {
        e.armed = 0;
        if (!e.queued) {
          e.queued = true;
          pending.push_back(fd);
        }
      });
    }
    if (!enabled) {
      // io_uring_enable_rings is declared by liburing 2.3 but missing from its shared library: the system call.
      if (::syscall(__NR_io_uring_register, ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0)
        throw std::system_error(errno, std::system_category(), "io_uring_register(ENABLE_RINGS)");
      enabled = true;
    }
    issuer = me;
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    while (s == nullptr) {  // the SQ is full: hand it to the kernel and take a fresh one
      int rc = io_uring_submit(&ring);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        throw std::system_error(-rc, std::system_category(), "io_uring_submit");
      s = io_uring_get_sqe(&ring);
    }
    return s;
  }

  void queue(int fd, UringEntry& e) {
    if (e.queued) return;
    pending.push_back(fd);  // may throw bad_alloc before anything changed
    e.queued = true;
  }

  // Turns the noted changes into SQEs (not submitted yet).
  void prepare() {
    for (std::uint64_t ud : removals) {
      io_uring_sqe* s = sqe();
      io_uring_prep_poll_remove(s, ud);
      io_uring_sqe_set_data64(s, internal_tag);
      s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
    removals.clear();
    for (int fd : pending) {
      UringEntry* e = table.find(fd);
      if (e == nullptr || !e->queued) continue;  // unregistered since (and maybe re-registered and armed already)
      e->queued = false;
      if (e->armed != 0) {
        if (e->armed == e->events) continue;  // the poll in flight already asks for the right events
        io_uring_sqe* s = sqe();
        io_uring_prep_poll_remove(s, user_data(fd, e->generation));
        io_uring_sqe_set_data64(s, internal_tag);
        s->flags |= IOSQE_CQE_SKIP_SUCCESS;
      }
      e->generation = ++next_generation;
      e->armed = e->events;
      io_uring_sqe* s = sqe();
      io_uring_prep_poll_add(s, fd, to_poll(e->events));
      ++inflight;
      io_uring_sqe_set_data64(s, user_data(fd, e->generation));
    }
    pending.clear();
  }

  // Collects every completion in the CQ; returns how many were seen.
  unsigned reap() {
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
      if (ud & internal_tag) continue;
      if (ud == LIBURING_UDATA_TIMEOUT) continue;
      if (ud & op_tag) {
        note_op(ud, cqe->res, cqe->flags, false);
        continue;
      }
      if (inflight > 0) --inflight;
      const int fd = int(std::uint32_t(ud));
      UringEntry* e = table.find(fd);
      if (e == nullptr || e->armed == 0 || user_data(fd, e->generation) != ud) continue;  // stale
      const std::uint8_t registered = e->events;
      e->armed = 0;
      if (!e->queued) {
        e->queued = true;
        pending.push_back(fd);  // level triggering: armed again at the next select
      }
      Events events = from_poll(cqe->res, registered);
      if (events != Events::none) ready.push_back(SelectorEvent{fd, events, e->data});
    }
    io_uring_cq_advance(&ring, seen);
    return seen;
  }

  bool overflowed() const noexcept { return io_uring_cq_has_overflow(&ring); }

  // Delivers what reap() collected. A target may prepare new operations meanwhile (submitted at the next select).
  void deliver() noexcept {
    delivered = completions.size();
    for (std::size_t i = 0; i < completions.size(); ++i) {
      const Completion c = completions[i];
      c.target->on_completion(c.op, c.res, c.flags, false);
    }
    completions.clear();
  }
};

io_uring_sqe* UringOps::prepare(UringTarget* target, unsigned op) {
  io_uring_sqe* s = state_->sqe();
  io_uring_sqe_set_data64(s, op_data(target, op));
  ++state_->ops_inflight;
  return s;
}

void UringOps::cancel(UringTarget* target, unsigned op) {
  io_uring_sqe* s = state_->sqe();
  io_uring_prep_cancel64(s, op_data(target, op), 0);
  io_uring_sqe_set_data64(s, internal_tag);
  s->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

// Not in liburing 2.3's headers (Linux 6.12): incremental consumption of provided buffers.
constexpr std::uint16_t pbuf_ring_inc = 2;             // IOU_PBUF_RING_INC, io_uring_buf_reg's flags
constexpr unsigned cqe_f_buf_more = 1u << 4;           // IORING_CQE_F_BUF_MORE: the kernel still fills this buffer
constexpr std::size_t incremental_buffer = 64 * 1024;  // a 64 KiB message fits one, as epoll's read buffer

void UringOps::ensure_buffers() {
  UringState& st = *state_;
  if (st.buf_ring != nullptr) return;
  const std::size_t memory = std::size_t(st.buffer_units) * 8 * 1024;
  // Incremental buffers where the kernel has them (it refuses the flag with EINVAL before 6.12), else 8 KiB ones.
  for (const bool incremental : {true, false}) {
    const std::size_t size = incremental ? std::min(memory, incremental_buffer) : 8 * 1024;
    const unsigned count = unsigned(memory / size);
    const std::size_t ring_bytes = count * sizeof(io_uring_buf);
    void* r = ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (r == MAP_FAILED) throw std::system_error(errno, std::system_category(), "mmap (io_uring buffer ring)");
    void* b = ::mmap(nullptr, memory, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
    if (b == MAP_FAILED) {
      int err = errno;
      ::munmap(r, ring_bytes);
      throw std::system_error(err, std::system_category(), "mmap (io_uring provided buffers)");
    }
    st.buf_ring = static_cast<io_uring_buf_ring*>(r);
    st.buffers = static_cast<std::byte*>(b);
    st.buffer_count = count;
    st.buffer_size = size;
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(r);
    reg.ring_entries = count;
    reg.bgid = buffer_group;
    reg.pad = incremental ? pbuf_ring_inc : 0;  // `flags` in the kernel's struct
    int rc = io_uring_register_buf_ring(&st.ring, &reg, 0);
    if (rc < 0) {
      st.free_buffers();
      if (incremental && rc == -EINVAL) continue;
      throw std::system_error(-rc, std::system_category(), "io_uring_register_buf_ring");
    }
    if (incremental) {  // (may throw: the ring then stays registered and unused)
      st.filled.assign(count, 0);
      st.users.assign(count, 0);
      st.done.assign(count, 0);
    }
    st.incremental = incremental;
    io_uring_buf_ring_init(st.buf_ring);
    const int mask = io_uring_buf_ring_mask(count);
    for (unsigned i = 0; i < count; ++i)
      io_uring_buf_ring_add(st.buf_ring, st.buffers + std::size_t(i) * size, unsigned(size), std::uint16_t(i), mask,
                            int(i));
    io_uring_buf_ring_advance(st.buf_ring, int(count));
    return;
  }
}

std::span<std::byte> UringOps::received(int res, unsigned flags) noexcept {
  UringState& st = *state_;
  // (the id comes from the kernel, which only hands out ids of this ring)
  const unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
  std::byte* at = st.buffers + std::size_t(id) * st.buffer_size;
  if (st.incremental) {
    at += st.filled[id];
    st.filled[id] += std::uint32_t(res);
    ++st.users[id];
    if (!(flags & cqe_f_buf_more)) st.done[id] = 1;
  }
  return {at, std::size_t(res)};
}

void UringOps::release(unsigned flags) noexcept {
  UringState& st = *state_;
  const unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
  if (st.incremental) {
    // Back to the kernel once it stopped filling it and every piece of it was released (pieces of one buffer can
    // belong to several connections, and one may be held while another is delivered).
    if (--st.users[id] > 0 || !st.done[id]) return;
    st.filled[id] = 0;
    st.done[id] = 0;
  }
  io_uring_buf_ring_add(st.buf_ring, st.buffers + std::size_t(id) * st.buffer_size, unsigned(st.buffer_size),
                        std::uint16_t(id), io_uring_buf_ring_mask(st.buffer_count), 0);
  io_uring_buf_ring_advance(st.buf_ring, 1);
}

bool UringOps::incremental_buffers() const noexcept { return state_->incremental; }

std::size_t UringOps::buffer_bytes() const noexcept { return state_->buffer_size; }

void UringOps::close_fd(int fd) noexcept {
  UringState& st = *state_;
  if (io_uring_sq_ready(&st.ring) > 0 && st.enabled && st.issuer == std::this_thread::get_id()) {
    io_uring_submit(&st.ring);
    if (io_uring_sq_ready(&st.ring) == 0) st.submitted();
  }
  if (io_uring_sq_ready(&st.ring) == 0) {
    ::close(fd);
    return;
  }
  try {
    st.close_after_submit.push_back(fd);
  } catch (...) {
    ::close(fd);  // out of memory: the queued SQEs on this fd number then fail with EBADF (or hit its next owner)
  }
}

std::size_t UringOps::delivered() const noexcept { return state_->delivered; }

void UringOps::count_shortage() noexcept { ++state_->buffer_shortages; }

void UringOps::add_resident(UringTarget* target) {
  for (UringTarget* r : state_->residents)
    if (r == target) return;
  state_->residents.push_back(target);
}

msghdr* UringOps::scratch(int iov_count) {
  UringState& st = *state_;
  if (iov_count > 16) throw std::invalid_argument("UringOps::scratch: at most 16 iovecs");
  if (st.scratch_used == st.scratch.size()) st.scratch.push_back(std::make_unique<Scratch>());
  Scratch& sc = *st.scratch[st.scratch_used++];
  sc.msg = msghdr{};
  sc.msg.msg_iov = sc.iov;
  sc.msg.msg_iovlen = std::size_t(iov_count);
  return &sc.msg;
}

}  // namespace detail

using detail::UringEntry;

UringSelector::UringSelector(unsigned entries, unsigned buffers) : state_(std::make_unique<detail::UringState>()) {
  if (buffers == 0 || (buffers & (buffers - 1)) != 0 || buffers > 32768)
    throw std::invalid_argument("UringSelector: buffers must be a power of two up to 32768");
  state_->entries = entries == 0 ? 256 : entries;
  state_->buffer_units = buffers;
  state_->open_ring();
  state_->ready.reserve(64);
  state_->pending.reserve(64);
}

UringSelector::~UringSelector() = default;

bool UringSelector::is_registered(int fd) const noexcept { return state_->table.find(fd) != nullptr; }

void UringSelector::register_fd(int fd, Events events, void* data) {
  detail::check_events(events, "register_fd");
  auto& st = *state_;
  if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) detail::throw_selector_error(EBADF, name(), "register", fd);
  if (st.table.find(fd) != nullptr) detail::throw_selector_error(EEXIST, name(), "register (already registered)", fd);
  UringEntry& e = st.table.insert(fd, UringEntry{data, 0, std::uint8_t(events), 0, false});
  try {
    st.queue(fd, e);
  } catch (...) {
    st.table.erase(fd);
    throw;
  }
}

void UringSelector::modify(int fd, Events events, void* data) {
  detail::check_events(events, "modify");
  auto& st = *state_;
  UringEntry* e = st.table.find(fd);
  if (e == nullptr) detail::throw_selector_error(ENOENT, name(), "modify (not registered)", fd);
  if (e->events != std::uint8_t(events)) {
    st.queue(fd, *e);
    e->events = std::uint8_t(events);
  }
  e->data = data;
}

void UringSelector::unregister(int fd) {
  auto& st = *state_;
  UringEntry* e = st.table.find(fd);
  if (e == nullptr) detail::throw_selector_error(ENOENT, name(), "unregister (not registered)", fd);
  if (e->armed != 0) st.removals.push_back(detail::user_data(fd, e->generation));
  st.table.erase(fd);
}

std::span<const SelectorEvent> UringSelector::select(Duration timeout) {
  auto& st = *state_;
  st.ready.clear();
  st.bind_to_this_thread();
  st.prepare();
  // Room for every fd that may complete in this select, so that reaping never allocates.
  if (st.ready.capacity() < st.table.size()) st.ready.reserve(st.table.size());

  int rc;
  if (timeout == Duration::zero() || (timeout < Duration::zero() && !detail::is_forever(timeout))) {
    rc = io_uring_submit_and_get_events(&st.ring);
  } else if (detail::is_forever(timeout)) {
    rc = io_uring_cq_ready(&st.ring) > 0 ? io_uring_submit_and_get_events(&st.ring)
                                         : io_uring_submit_and_wait(&st.ring, 1);
  } else {
    __kernel_timespec ts{};
    timespec t = detail::to_timespec(timeout);
    ts.tv_sec = t.tv_sec;
    ts.tv_nsec = t.tv_nsec;
    io_uring_cqe* cqe = nullptr;
    rc = io_uring_submit_and_wait_timeout(&st.ring, &cqe, 1, &ts, nullptr);
    if (rc == -ETIME) rc = 0;
  }
  if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME)
    throw std::system_error(-rc, std::system_category(), "io_uring_enter");
  // Everything submitted (else the SQEs left stay queued, and so must their msghdrs and fds).
  if (io_uring_sq_ready(&st.ring) == 0) st.submitted();

  // Reap; while the kernel holds completions that did not fit in the CQ, flush them and reap again.
  st.reap();
  while (st.overflowed()) {
    ++st.overflow_flushes;
    int frc = io_uring_get_events(&st.ring);
    if (frc < 0 && frc != -EINTR && frc != -EAGAIN && frc != -EBUSY)
      throw std::system_error(-frc, std::system_category(), "io_uring_get_events");
    if (st.reap() == 0 && frc < 0) break;
  }
  st.deliver();
  return st.ready;
}

std::uint64_t UringSelector::overflow_flushes() const noexcept { return state_->overflow_flushes; }

unsigned UringSelector::setup_flags() const noexcept { return state_->flags; }

detail::UringOps* UringSelector::ops() noexcept { return &state_->ops; }

std::uint64_t UringSelector::buffer_shortages() const noexcept { return state_->buffer_shortages; }

detail::UringOps* detail::uring_ops(EventLoop& loop) noexcept {
  auto* s = dynamic_cast<UringSelector*>(&loop.selector());
  return s ? s->ops() : nullptr;
}

std::unique_ptr<Selector> make_uring_selector() { return std::make_unique<UringSelector>(); }

bool uring_available() noexcept { return true; }

#else  // built without liburing (TULIPA_WITH_URING=OFF or liburing not found)

namespace detail {
struct UringState {};
}  // namespace detail

UringSelector::UringSelector(unsigned, unsigned) {
  throw std::system_error(ENOSYS, std::system_category(), "tulipa was built without io_uring (TULIPA_WITH_URING)");
}
UringSelector::~UringSelector() = default;
bool UringSelector::is_registered(int) const noexcept { return false; }
void UringSelector::register_fd(int, Events, void*) {}
void UringSelector::modify(int, Events, void*) {}
void UringSelector::unregister(int) {}
std::span<const SelectorEvent> UringSelector::select(Duration) { return {}; }
std::uint64_t UringSelector::overflow_flushes() const noexcept { return 0; }
unsigned UringSelector::setup_flags() const noexcept { return 0; }
detail::UringOps* UringSelector::ops() noexcept { return nullptr; }
std::uint64_t UringSelector::buffer_shortages() const noexcept { return 0; }
detail::UringOps* detail::uring_ops(EventLoop&) noexcept { return nullptr; }
// Never called: uring_ops() is null in this build. (Defined so that the transports' io_uring branches link.)
io_uring_sqe* detail::UringOps::prepare(UringTarget*, unsigned) { return nullptr; }
void detail::UringOps::cancel(UringTarget*, unsigned) {}
void detail::UringOps::ensure_buffers() {}
std::span<std::byte> detail::UringOps::received(int, unsigned) noexcept { return {}; }
void detail::UringOps::release(unsigned) noexcept {}
bool detail::UringOps::incremental_buffers() const noexcept { return false; }
std::size_t detail::UringOps::buffer_bytes() const noexcept { return 0; }
void detail::UringOps::close_fd(int fd) noexcept { ::close(fd); }
std::size_t detail::UringOps::delivered() const noexcept { return 0; }
void detail::UringOps::count_shortage() noexcept {}
void detail::UringOps::add_resident(UringTarget*) {}
msghdr* detail::UringOps::scratch(int) { return nullptr; }
std::unique_ptr<Selector> make_uring_selector() { return std::make_unique<UringSelector>(); }
bool uring_available() noexcept { return false; }

#endif

}  // namespace tulipa
