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
// Backends (src/selectors/): EpollSelector (level-triggered; the loop relies on it) and PollSelector (ppoll).
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
// - EpollSelector cannot watch regular files (std::system_error(EPERM)); PollSelector can (always ready).
// - Bookkeeping is a table indexed by fd for fds below 65536 (grown on registration, never in select) and a hash
//   map above. The ready buffer doubles when a select fills it, and the same select then collects the rest, so a
//   burst of N ready fds is returned at once; in steady state select() allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
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
};

namespace detail {
struct EpollState;  // src/selectors/epoll_selector.cpp: the epoll fd, the fd table, the kernel's event buffer
struct PollState;   // src/selectors/poll_selector.cpp: the pollfd array and the fd -> slot table
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

// The best backend on this platform (what make_default_selector() builds when the environment says nothing).
using DefaultSelector = EpollSelector;

std::unique_ptr<Selector> make_epoll_selector();
std::unique_ptr<Selector> make_poll_selector();
// The best backend this platform has (epoll on Linux). TULIPA_SELECTOR=poll|epoll in the environment overrides it.
std::unique_ptr<Selector> make_default_selector();

}  // namespace tulipa
