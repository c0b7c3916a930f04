// EpollSelector: level-triggered epoll. The event loop relies on level triggering: a callback that reads only
// part of what is buffered is called again on the next pass, with no bookkeeping of its own.
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <new>
#include <vector>

#include "selectors/checks.hpp"
#include "selectors/fd_map.hpp"
#include "selectors/timeout.hpp"
#include "tulipa/selector.hpp"

namespace tulipa {
namespace detail {

namespace {

// What we keep per fd: 16 bytes. `stamp` marks the fds already reported by the select in progress (see collect).
struct EpollEntry {
  void* data = nullptr;
  Events events = Events::none;
  std::uint32_t stamp = 0;
  bool occupied() const noexcept { return events != Events::none; }
};

constexpr std::size_t initial_batch = 64;

std::uint32_t to_epoll(Events events) noexcept {
  std::uint32_t mask = 0;
  if (any(events & Events::read)) mask |= EPOLLIN;
  if (any(events & Events::write)) mask |= EPOLLOUT;
  return mask;  // no EPOLLET: level-triggered on purpose
}

// Error and hang-up mean "try your operation and meet the error there": report the whole registered interest.
Events from_epoll(std::uint32_t mask, Events registered) noexcept {
  Events ready = Events::none;
  if (mask & (EPOLLERR | EPOLLHUP)) ready = registered;
  if (mask & (EPOLLIN | EPOLLRDHUP | EPOLLPRI)) ready = ready | Events::read;
  if (mask & EPOLLOUT) ready = ready | Events::write;
  return ready & registered;
}

}  // namespace

struct EpollState {
  int epfd = -1;
  bool use_pwait2 = true;  // cleared for good the first time the kernel says ENOSYS
  std::uint32_t round = 0;
  FdMap<EpollEntry> table;
  std::vector<epoll_event> kernel;   // the kernel's buffer; its size is the batch epoll may fill
  std::vector<SelectorEvent> ready;  // what select() lends out; capacity kept >= kernel.size()
  std::size_t busiest = 0;           // the most events a select() returned since the last give_back()

  ~EpollState() {
    if (epfd >= 0) ::close(epfd);
  }

  int wait(Duration timeout) noexcept {
    int capacity = static_cast<int>(kernel.size());
    if (use_pwait2) {
      timespec ts;
      const timespec* tsp = nullptr;
      if (!is_forever(timeout)) {
        ts = to_timespec(timeout);
        tsp = &ts;
      }
      int n = ::epoll_pwait2(epfd, kernel.data(), capacity, tsp, nullptr);
      if (n >= 0 || errno != ENOSYS) return n;
      use_pwait2 = false;  // kernel older than 5.11
    }
    return ::epoll_wait(epfd, kernel.data(), capacity, to_epoll_ms(timeout));
  }

  // Turns kernel[from, from + n) into ready events. With `dedup`, skips fds already stamped with this round.
  // Returns whether a duplicate was seen.
  bool collect(std::size_t from, int n, bool dedup) noexcept {
    bool duplicate = false;
    for (std::size_t i = from; i < from + std::size_t(n); ++i) {
      const epoll_event& ev = kernel[i];
      int fd = static_cast<int>(ev.data.u64);
      EpollEntry* entry = table.find(fd);
      // Not registered any more: a file closed while registered but kept open by a dup() is still reported by
      // the kernel under its old number. Nobody wants it.
      if (entry == nullptr) continue;
      if (dedup && entry->stamp == round) {
        duplicate = true;
        continue;
      }
      entry->stamp = round;
      Events events = from_epoll(ev.events, entry->events);
      if (events == Events::none) continue;
      ready.push_back(SelectorEvent{fd, events, entry->data});  // capacity reserved: never allocates
    }
    return duplicate;
  }

  // The batch a busy period needs: twice the most events one select() returned (so that steady load never fills
  // it and makes it grow again), in powers of two from the initial batch.
  std::size_t batch_for(std::size_t events) const noexcept {
    std::size_t b = initial_batch;
    while (b < 2 * events) b *= 2;
    return b;
  }

  // A new stamp for a full batch. After 2^32 full batches the stamps wrap, and an fd whose old stamp happens to
  // equal the new round is taken for a repeat: level-triggered epoll reports it again on the next select, so a
  // collision delays one fd by one pass and loses nothing. Cheaper than a wider stamp in every entry.
  void next_round() noexcept { ++round; }
};

}  // namespace detail

using detail::EpollEntry;

EpollSelector::EpollSelector(bool nanosecond_timeouts) : state_(std::make_unique<detail::EpollState>()) {
  state_->epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (state_->epfd < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
  state_->use_pwait2 = nanosecond_timeouts;
  state_->kernel.resize(detail::initial_batch);
  state_->ready.reserve(detail::initial_batch);
}

EpollSelector::~EpollSelector() = default;

int EpollSelector::fileno() const noexcept { return state_->epfd; }

// After a burst: the fd table's pages above the fds in use, and the event arrays grown beyond what the last second
// needed (a burst of 10,000 ready connections doubled them to 16,384 events, 448 KiB).
bool EpollSelector::over_reserve() const noexcept {
  const auto& st = *state_;
  return st.table.over_reserve() || st.kernel.size() > st.batch_for(st.busiest);
}

std::size_t EpollSelector::give_back() noexcept {
  auto& st = *state_;
  std::size_t freed = st.table.give_back();
  const std::size_t batch = st.batch_for(st.busiest);
  st.busiest = 0;
  if (st.kernel.size() > batch) {
    try {
      const std::size_t before =
          st.kernel.capacity() * sizeof(epoll_event) + st.ready.capacity() * sizeof(SelectorEvent);
      std::vector<epoll_event> kernel(batch);
      std::vector<SelectorEvent> ready;
      ready.reserve(batch);
      st.kernel.swap(kernel);
      st.ready.swap(ready);
      freed += before - batch * (sizeof(epoll_event) + sizeof(SelectorEvent));
    } catch (const std::bad_alloc&) {  // keep the big ones
    }
  }
  return freed;
}

bool EpollSelector::is_registered(int fd) const noexcept { return state_->table.find(fd) != nullptr; }

void EpollSelector::register_fd(int fd, Events events, void* data) {
  detail::check_events(events, "register_fd");
  if (fd < 0) detail::throw_selector_error(EBADF, name(), "register", fd);
  auto& st = *state_;
  if (st.table.find(fd) != nullptr) detail::throw_selector_error(EEXIST, name(), "register (already registered)", fd);
  st.table.insert(fd, EpollEntry{data, events, 0});  // first, so a bad_alloc leaves the kernel untouched
  epoll_event ev{};
  ev.events = detail::to_epoll(events);
  ev.data.u64 = static_cast<std::uint32_t>(fd);
  int rc = ::epoll_ctl(st.epfd, EPOLL_CTL_ADD, fd, &ev);
  if (rc < 0 && errno == EEXIST) {
    // The kernel still holds a registration we forgot: this file was closed while registered, kept open by a
    // dup(), unregistered (EBADF, bookkeeping dropped) and is now back under the same number. Take it over.
    rc = ::epoll_ctl(st.epfd, EPOLL_CTL_MOD, fd, &ev);
  }
  if (rc < 0) {
    int err = errno;
    st.table.erase(fd);
    detail::throw_selector_error(err, name(), err == EPERM ? "register (epoll cannot watch regular files)" : "register",
                                 fd);
  }
}

void EpollSelector::modify(int fd, Events events, void* data) {
  detail::check_events(events, "modify");
  auto& st = *state_;
  EpollEntry* entry = st.table.find(fd);
  if (entry == nullptr) detail::throw_selector_error(ENOENT, name(), "modify (not registered)", fd);
  if (entry->events != events) {  // data lives only in our table: changing it alone costs no system call
    epoll_event ev{};
    ev.events = detail::to_epoll(events);
    ev.data.u64 = static_cast<std::uint32_t>(fd);
    if (::epoll_ctl(st.epfd, EPOLL_CTL_MOD, fd, &ev) < 0) detail::throw_selector_error(errno, name(), "modify", fd);
    entry->events = events;
  }
  entry->data = data;
}

void EpollSelector::unregister(int fd) {
  auto& st = *state_;
  if (st.table.find(fd) == nullptr) detail::throw_selector_error(ENOENT, name(), "unregister (not registered)", fd);
  // EBADF (fd closed) and ENOENT (number reused by a file never registered) both mean the kernel already
  // forgot this registration when the file was closed: dropping our bookkeeping is all there is to do.
  (void)::epoll_ctl(st.epfd, EPOLL_CTL_DEL, fd, nullptr);
  st.table.erase(fd);
}

std::span<const SelectorEvent> EpollSelector::select(Duration timeout) {
  auto& st = *state_;
  st.ready.clear();
  int n = st.wait(timeout);
  if (n < 0) {
    if (errno == EINTR) return {};
    throw std::system_error(errno, std::system_category(), "epoll_wait");
  }
  if (std::size_t(n) < st.kernel.size()) {
    st.collect(0, n, false);
    st.busiest = std::max(st.busiest, st.ready.size());
    return st.ready;
  }
  // The buffer was full: more fds may be ready. Grow it (for this and later selects) and ask again without
  // waiting, until the kernel has no more. Level-triggered fds already reported go back to the END of the
  // kernel's ready list, behind the ones not reported yet, so the first repeat marks the end of the batch.
  st.next_round();
  st.collect(0, n, false);
  for (;;) {
    std::size_t old = st.kernel.size();
    st.kernel.resize(old * 2);
    st.ready.reserve(st.kernel.size());
    int m = ::epoll_wait(st.epfd, st.kernel.data() + old, static_cast<int>(old), 0);
    if (m <= 0) break;  // nothing more, or a signal: return what we have
    bool duplicate = st.collect(old, m, true);
    if (duplicate || std::size_t(m) < old) break;
  }
  st.busiest = std::max(st.busiest, st.ready.size());
  return st.ready;
}

std::unique_ptr<Selector> make_epoll_selector() { return std::make_unique<EpollSelector>(); }

}  // namespace tulipa
