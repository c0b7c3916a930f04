// ServerCore: the state behind a Server handle (server.hpp): its listening sockets, the accept loop and the list
// of its live connections. It outlives the Server handle while connections remain, so that transports can always
// tell their server that they ended.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "selectors/uring_ops.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/server.hpp"

namespace tulipa::detail {

class SocketTransport;
class UringSocketTransport;
class UringOps;

// The system's listen backlog limit (/proc/sys/net/core/somaxconn, read once), ServerOptions::backlog's default.
int system_somaxconn() noexcept;

struct ServerCore;

// One listening socket. On a loop with io_uring operations it accepts with one multishot accept instead of polling:
// armed while serving, cancelled by close() and while accepting is paused, armed again whenever a completion lacks
// IORING_CQE_F_MORE. A listener closed with its accept in flight is let go by its server and frees itself (closing
// its socket) at the accept's final completion.
// After a shortage (EMFILE & co end the multishot accept) it resumes on readiness, as on epoll: polled, accept4 on
// each wake-up, until accept4 says EAGAIN (the backlog drained with a descriptor to spare: the shortage is over,
// the next one is reported again); then it goes back to the multishot accept. A multishot accept cannot tell that
// the backlog is empty (it waits silently), so it could never end the shortage's report.
struct Listener final : IoWatcher, UringTarget {
  ServerCore* core = nullptr;
  UringOps* ops = nullptr;  // null: readiness (accept4 on each wake-up)
  int fd = -1;
  bool tcp = true;
  bool armed = false;    // a multishot accept is in flight
  bool watched = false;  // registered with the loop (readiness): always on epoll/poll; on io_uring after a shortage
  bool orphan = false;   // the server let go of it: free at the final completion
  void on_io(Events ready) override;
  void on_completion(unsigned op, int res, unsigned flags, bool teardown) noexcept override;
  void arm();
  void disarm();
  void poll_instead();  // io_uring, resuming after a shortage: readiness until accept4 says EAGAIN
};

struct ServerCore {
  // Fills in the defaults: backlog 0 becomes system_somaxconn().
  ServerCore(EventLoop& loop, ProtocolFactory factory, ServerOptions options);
  ~ServerCore();

  // Takes ownership of the bound, listening, non-blocking socket.
  void add_listener(int fd, bool tcp);
  void start_serving();
  void close();
  void accepted(int fd);
  void accept_failed(int err);
  void resume_accepting();
  void set_polling(bool on);

  void attach(SocketTransport* t) noexcept;
  void detach(SocketTransport* t) noexcept;
  void attach(UringSocketTransport* t) noexcept;
  void detach(UringSocketTransport* t) noexcept;
  void maybe_finish();

  EventLoop& loop;
  ProtocolFactory factory;
  ServerOptions options;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::string unix_path;  // unlinked on close()
  SocketTransport* clients = nullptr;
  UringSocketTransport* uring_clients = nullptr;  // the completion transports (io_uring operations)
  std::size_t active = 0;
  std::vector<Callback> closed_waiters;
  TimerHandle retry;
  bool serving = false;
  bool closed = false;
  bool accept_paused = false;  // after EMFILE & co, until the retry timer fires
  bool reported = false;       // the resource shortage was reported; reset when accept() says EAGAIN
  bool handle_alive = true;    // the Server handle still exists
};

}  // namespace tulipa::detail
