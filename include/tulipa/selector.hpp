// Selectors: one interface over the operating system's readiness notification (epoll, poll; kqueue would sit
// behind the same interface). The event loop owns one; tests run the same suite against every backend.
//
// Contract, for every backend:
// - register_fd(fd, events, data): events must not be Events::none (std::invalid_argument); registering an fd that
//   is already registered throws std::system_error(EEXIST); a bad fd throws std::system_error(EBADF).
// - modify(fd, events, data): the fd must be registered (std::system_error(ENOENT) otherwise).
// - unregister(fd): ENOENT for an fd that is not registered. An fd closed while still registered is forgotten
//   without error (epoll drops it by itself when the file is closed).
// - select(timeout): waits up to `timeout` (Duration::zero() polls, Selector::forever blocks) and returns the ready
//   fds. The span is the selector's own buffer: valid until the next call to select() or until the selector is
//   destroyed. Error and hang-up conditions are reported as every event the fd was registered for, so that its
//   owner tries the operation and meets the error there. A signal (EINTR) returns an empty span early.
//   `data` is the registrant's pointer, returned untouched.
//
// Backends (src/selectors/): EpollSelector (level-triggered; the loop relies on it), PollSelector (ppoll) and
// UringSelector (io_uring: a one-shot poll per fd, re-armed after each completion, so level-triggered too; every
// change is submitted in the io_uring_enter that waits, once per select).
// How each meets the contract where the kernel differs:
// - A closed fd still registered: epoll forgets it when the last descriptor of that open file closes, so it is
//   reported no more; poll reports POLLNVAL, which PollSelector turns into the registered interest, so the owner
//   tries its operation, meets EBADF and unregisters. (An epoll quirk worth knowing: while a dup() of the closed fd
//   keeps the file open, epoll keeps reporting it under the old number; such an event for an fd no longer
//   registered is dropped, and one for a number re-registered meanwhile is a spurious wake-up its owner's
//   non-blocking operation absorbs.)
// - Timeouts have nanosecond resolution (epoll_pwait2, ppoll). On kernels without epoll_pwait2 the timeout is
//   rounded UP to whole milliseconds, so a select never returns before the deadline the loop asked for.
//   Selector::forever is exactly Duration{-1}; any other negative timeout counts as zero (a deadline already past).
// - EpollSelector cannot watch regular files (std::system_error(EPERM)); PollSelector and UringSelector can (always
//   ready).
// - UringSelector: an fd closed before its poll was submitted (at the next select) is reported as its interest, like
//   poll's POLLNVAL; one closed while its poll is armed is reported no more (the armed poll holds a reference to
//   the file, so the file stays open until the fd is unregistered and the next select() submits the removal).
//   Destroying a UringSelector cancels and reaps its polls, but the kernel's teardown of the ring still interrupts
//   the thread's next blocking wait once, like a signal: an early empty select(), which the loop absorbs as EINTR.
// - Bookkeeping is a table indexed by fd for fds below 65536 (grown on registration, never in select) and a hash
//   map above. The ready buffer doubles when a select fills it, and the same select then collects the rest, so a
//   burst of N ready fds is returned at once; in steady state select() allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "tulipa/clock.hpp"

namespace tulipa {

enum class Events : std::uint32_t { none = 0, read = 1, write = 2, read_write = 3 };
constexpr Events operator|(Events a, Events b) noexcept { return Events(std::uint32_t(a) | std::uint32_t(b)); }
constexpr Events operator&(Events a, Events b) noexcept { return Events(std::uint32_t(a) & std::uint32_t(b)); }
constexpr Events operator~(Events a) noexcept { return Events(~std::uint32_t(a) & 3u); }
constexpr bool any(Events e) noexcept { return e != Events::none; }

struct SelectorEvent {
  int fd;
  Events events;
  void* data;
};

class Selector {
 public:
  static constexpr Duration forever{-1};

  virtual ~Selector() = default;
  virtual std::string_view name() const noexcept = 0;
  virtual void register_fd(int fd, Events events, void* data) = 0;
  virtual void modify(int fd, Events events, void* data) = 0;
  virtual void unregister(int fd) = 0;
  virtual bool is_registered(int fd) const noexcept = 0;
  virtual std::span<const SelectorEvent> select(Duration timeout) = 0;
  // Memory kept for reuse beyond what the fds registered now need (tables and event arrays grown for a burst of
  // connections): whether some may be given back, and giving it back (returns the bytes freed). The loop calls them
  // when it is about to sleep, and give_back() at most once a second, with its own (what the base keeps: nothing).
  virtual bool over_reserve() const noexcept { return false; }
  virtual std::size_t give_back() noexcept { return 0; }
};

namespace detail {
struct EpollState;  // src/selectors/epoll_selector.cpp: the epoll fd, the fd table, the kernel's event buffer
struct PollState;   // src/selectors/poll_selector.cpp: the pollfd array and the fd -> slot table
struct UringState;  // src/selectors/uring_selector.cpp: the ring, the fd table, the changes noted for the next select
class UringOps;     // src/selectors/uring_ops.hpp: operation-level I/O (the completion transports)
}  // namespace detail

class EpollSelector final : public Selector {
 public:
  // Throws std::system_error if epoll_create1 fails (EMFILE, ENOMEM). `nanosecond_timeouts = false` forces the
  // millisecond epoll_wait path that kernels before 5.11 (no epoll_pwait2) take anyway; tests run both.
  explicit EpollSelector(bool nanosecond_timeouts = true);
  ~EpollSelector() override;
  EpollSelector(const EpollSelector&) = delete;
  EpollSelector& operator=(const EpollSelector&) = delete;

  std::string_view name() const noexcept override { return "epoll"; }
  void register_fd(int fd, Events events, void* data) override;
  void modify(int fd, Events events, void* data) override;
  void unregister(int fd) override;
  bool is_registered(int fd) const noexcept override;
  std::span<const SelectorEvent> select(Duration timeout) override;
  bool over_reserve() const noexcept override;
  std::size_t give_back() noexcept override;
  // The epoll instance's own fd (close-on-exec), e.g. to nest this selector in another one.
  int fileno() const noexcept;

 private:
  std::unique_ptr<detail::EpollState> state_;
};

class PollSelector final : public Selector {
 public:
  PollSelector();
  ~PollSelector() override;
  PollSelector(const PollSelector&) = delete;
  PollSelector& operator=(const PollSelector&) = delete;

  std::string_view name() const noexcept override { return "poll"; }
  void register_fd(int fd, Events events, void* data) override;
  void modify(int fd, Events events, void* data) override;
  void unregister(int fd) override;
  bool is_registered(int fd) const noexcept override;
  std::span<const SelectorEvent> select(Duration timeout) override;

 private:
  std::unique_ptr<detail::PollState> state_;
};

// io_uring (src/selectors/uring_selector.cpp says how). The constructor throws std::system_error when the kernel or a
// seccomp profile refuses io_uring (ENOSYS, EPERM, ENOMEM), or ENOSYS when tulipa was built without liburing
// (uring_available() is false then). `entries` sizes the submission queue (the completion queue is 4 times it);
// `buffers` (a power of two) is how many 8 KiB of provided-buffer memory the completion transports receive into (set
// up on first use: 4 MiB by default, as 64 KiB buffers consumed incrementally where the kernel can, else 8 KiB ones;
// tests shrink it to run out of buffers).
// The first select() binds the ring to its thread (SINGLE_ISSUER); a select() from another thread later rebuilds it.
class UringSelector final : public Selector {
 public:
  explicit UringSelector(unsigned entries = 256, unsigned buffers = 512);
  ~UringSelector() override;
  UringSelector(const UringSelector&) = delete;
  UringSelector& operator=(const UringSelector&) = delete;

  std::string_view name() const noexcept override { return "uring"; }
  void register_fd(int fd, Events events, void* data) override;
  void modify(int fd, Events events, void* data) override;
  void unregister(int fd) override;
  bool is_registered(int fd) const noexcept override;
  std::span<const SelectorEvent> select(Duration timeout) override;
  // How many times a select() found the completion queue overflowed and fetched the rest from the kernel.
  std::uint64_t overflow_flushes() const noexcept;
  // The IORING_SETUP_* flags the kernel accepted (SINGLE_ISSUER | DEFER_TASKRUN where it has them).
  unsigned setup_flags() const noexcept;
  // How many times a multishot receive ended because every provided buffer was in use (it is armed again).
  std::uint64_t buffer_shortages() const noexcept;
  // Operation-level I/O on this ring (private: src/selectors/uring_ops.hpp), for tulipa's own transports.
  detail::UringOps* ops() noexcept;

 private:
  std::unique_ptr<detail::UringState> state_;
};

// Whether this build of tulipa has the io_uring backend (the kernel may still refuse it at run time).
bool uring_available() noexcept;

// The best backend on this platform (what make_default_selector() builds when the environment says nothing).
using DefaultSelector = EpollSelector;

std::unique_ptr<Selector> make_epoll_selector();
std::unique_ptr<Selector> make_poll_selector();
std::unique_ptr<Selector> make_uring_selector();  // throws as UringSelector's constructor does

// Which backend an EventLoop runs on. `automatic`: TULIPA_LOOP=uring|epoll|poll in the environment (or, the older
// name, TULIPA_SELECTOR), else epoll (the default until io_uring is at least as fast on every benchmark shape).
enum class LoopBackend { automatic, epoll, poll, uring };

// The backend the environment asks for (LoopBackend::epoll when it says nothing). Throws std::invalid_argument for
// a value that names no backend.
LoopBackend backend_from_environment();
// The selector for `backend`. io_uring refused by the kernel (or absent from this build) falls back to epoll; then
// `fallback_reason`, when given, receives why ("io_uring_queue_init: Operation not permitted").
std::unique_ptr<Selector> make_selector(LoopBackend backend, std::string* fallback_reason = nullptr);
// make_selector(LoopBackend::automatic).
std::unique_ptr<Selector> make_default_selector();

}  // namespace tulipa
