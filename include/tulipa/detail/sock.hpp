// Internals of tulipa/sock.hpp (the library's, not part of the contract).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <span>
#include <string_view>

#include "tulipa/bytes.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/socket_address.hpp"

namespace tulipa {

class EventLoop;

namespace detail {

// The common part: try, wait for readiness on EAGAIN, retry in the callback, wake.
class SockWait : public Suspension {
 public:
  bool await_ready() { return attempt(); }
  bool await_suspend(std::coroutine_handle<> h);

 protected:
  SockWait(EventLoop& loop, int fd, bool for_write) noexcept : loop_(&loop), fd_(fd), for_write_(for_write) {}
  // Movable before it suspends (coro.hpp's rule 5): only then is nothing registered.
  SockWait(SockWait&& o) noexcept : Suspension(), loop_(o.loop_), fd_(o.fd_), err_(o.err_), for_write_(o.for_write_) {}
  ~SockWait();
  // Performs (or retries) the operation. True when it finished (successfully or with err_ set), false on EAGAIN.
  virtual bool attempt() = 0;
  // Throws std::system_error for err_ (after check_cancelled()).
  void check_error(const char* op) const;
  void describe_op(std::ostream& os, const char* op) const;
  EventLoop* loop_;
  int fd_;
  int err_ = 0;
  bool for_write_;
  bool registered_ = false;

 private:
  Cancel on_cancel() noexcept override;
  void unregister() noexcept;
  void on_ready() noexcept;
};

}  // namespace detail
}  // namespace tulipa
