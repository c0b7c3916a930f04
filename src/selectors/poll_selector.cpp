// PollSelector: ppoll over a dense pollfd array. O(registered fds) a select, but portable, and it watches any
// kind of fd (regular files included). Unregistering swaps the last pollfd into the hole, so the array stays dense.
#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <vector>

#include "selectors/checks.hpp"
#include "selectors/fd_map.hpp"
#include "selectors/timeout.hpp"
#include "tulipa/selector.hpp"

namespace tulipa {
namespace detail {

namespace {

// fd -> position in the pollfd array, plus one so that a zeroed slot means "not registered". 4 bytes an fd.
struct PollSlot {
  std::uint32_t index_plus_one = 0;
  bool occupied() const noexcept { return index_plus_one != 0; }
};

// What the kernel does not need to see, kept beside each pollfd at the same index.
struct PollRegistration {
  void* data;
  Events events;
};

short to_poll(Events events) noexcept {
  short mask = 0;
  if (any(events & Events::read)) mask |= POLLIN;
  if (any(events & Events::write)) mask |= POLLOUT;
  return mask;
}

// POLLNVAL (the fd was closed while registered) joins error and hang-up: the owner is told its whole interest
// is ready, tries its operation, meets EBADF and unregisters. Until then every select reports it again.
Events from_poll(short mask, Events registered) noexcept {
  Events ready = Events::none;
  if (mask & (POLLERR | POLLHUP | POLLNVAL)) ready = registered;
  if (mask & (POLLIN | POLLPRI | POLLRDHUP)) ready = ready | Events::read;
  if (mask & POLLOUT) ready = ready | Events::write;
  return ready & registered;
}

// Geometric growth, so that registering N fds one by one costs O(N), not O(N^2).
template <class T>
void make_room(std::vector<T>& v, std::size_t need) {
  if (v.capacity() < need) v.reserve(std::max(need, std::max<std::size_t>(16, v.capacity() * 2)));
}

}  // namespace

struct PollState {
  std::vector<pollfd> fds;
  std::vector<PollRegistration> regs;  // regs[i] belongs to fds[i]
  FdMap<PollSlot> table;
  std::vector<SelectorEvent> ready;  // capacity kept >= fds.size(), so select() never allocates
};

}  // namespace detail

using detail::PollSlot;

PollSelector::PollSelector() : state_(std::make_unique<detail::PollState>()) {}
PollSelector::~PollSelector() = default;

bool PollSelector::is_registered(int fd) const noexcept { return state_->table.find(fd) != nullptr; }

void PollSelector::register_fd(int fd, Events events, void* data) {
  detail::check_events(events, "register_fd");
  if (fd < 0) detail::throw_selector_error(EBADF, name(), "register", fd);
  auto& st = *state_;
  if (st.table.find(fd) != nullptr) detail::throw_selector_error(EEXIST, name(), "register (already registered)", fd);
  // poll itself accepts any number and reports POLLNVAL later; catch a bad fd here, where the caller can see it.
  if (::fcntl(fd, F_GETFD) < 0) detail::throw_selector_error(errno, name(), "register", fd);
  // Everything that can throw comes before the first change, so a bad_alloc leaves the selector as it was.
  std::size_t n = st.fds.size() + 1;
  detail::make_room(st.fds, n);
  detail::make_room(st.regs, n);
  detail::make_room(st.ready, n);
  st.table.insert(fd, PollSlot{static_cast<std::uint32_t>(n)});
  st.fds.push_back(pollfd{fd, detail::to_poll(events), 0});
  st.regs.push_back(detail::PollRegistration{data, events});
}

void PollSelector::modify(int fd, Events events, void* data) {
  detail::check_events(events, "modify");
  auto& st = *state_;
  PollSlot* slot = st.table.find(fd);
  if (slot == nullptr) detail::throw_selector_error(ENOENT, name(), "modify (not registered)", fd);
  std::size_t i = slot->index_plus_one - 1;
  st.fds[i].events = detail::to_poll(events);
  st.regs[i] = detail::PollRegistration{data, events};
}

void PollSelector::unregister(int fd) {
  auto& st = *state_;
  PollSlot* slot = st.table.find(fd);
  if (slot == nullptr) detail::throw_selector_error(ENOENT, name(), "unregister (not registered)", fd);
  std::size_t i = slot->index_plus_one - 1;
  std::size_t last = st.fds.size() - 1;
  if (i != last) {
    st.fds[i] = st.fds[last];
    st.regs[i] = st.regs[last];
    st.table.find(st.fds[i].fd)->index_plus_one = static_cast<std::uint32_t>(i + 1);
  }
  st.fds.pop_back();
  st.regs.pop_back();
  st.table.erase(fd);
}

std::span<const SelectorEvent> PollSelector::select(Duration timeout) {
  auto& st = *state_;
  st.ready.clear();
  timespec ts;
  const timespec* tsp = nullptr;
  if (!detail::is_forever(timeout)) {
    ts = detail::to_timespec(timeout);
    tsp = &ts;
  }
  int n = ::ppoll(st.fds.data(), st.fds.size(), tsp, nullptr);
  if (n < 0) {
    if (errno == EINTR) return {};
    throw std::system_error(errno, std::system_category(), "ppoll");
  }
  for (std::size_t i = 0; i < st.fds.size() && n > 0; ++i) {
    const pollfd& p = st.fds[i];
    if (p.revents == 0) continue;
    --n;
    Events events = detail::from_poll(p.revents, st.regs[i].events);
    if (events != Events::none) st.ready.push_back(SelectorEvent{p.fd, events, st.regs[i].data});
  }
  return st.ready;
}

std::unique_ptr<Selector> make_poll_selector() { return std::make_unique<PollSelector>(); }

}  // namespace tulipa
