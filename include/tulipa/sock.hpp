// Low-level socket operations as awaitables (asyncio's loop.sock_recv, sock_recv_into, sock_sendall, sock_accept,
// sock_connect), on a non-blocking socket the caller owns.
//
// Each operation first tries its system call; only when the kernel says EAGAIN does it wait, with the loop's
// add_reader/add_writer on the fd (so the fd must not have another reader or writer callback, nor belong to a
// transport, while the operation waits). The retry runs inside the readiness callback, as asyncio does, and the
// task resumes with the result on a later pass. A readiness wait costs no allocation beyond the loop's per-fd
// entry; the awaiter lives in the awaiting coroutine's frame.
//
// Cancellation (coro.hpp's protocol): a waiting operation is cancelled at once (the callback is removed, the task
// resumes with CancelledError). What was already done stays done: sock_sendall may have sent part of the data, a
// sock_connect in progress is abandoned (the socket is then in an undefined state: close it).
//
// Errors: std::system_error with the errno of the failing call (ECONNREFUSED, ECONNRESET, EBADF...).
//
// Borrowed buffers: sock_recv_into's and sock_sendall's spans, and sock_connect's address, are lent until the
// co_await completes (or the awaiter is destroyed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <span>
#include <string_view>

#include "tulipa/bytes.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/detail/sock.hpp"
#include "tulipa/socket_address.hpp"

namespace tulipa {

class EventLoop;

// Up to n bytes (at least one; empty at EOF), in a pooled chunk.
class [[nodiscard]] SockRecv final : public detail::SockWait {
 public:
  SockRecv(EventLoop& loop, int fd, std::size_t n) noexcept : SockWait(loop, fd, false), n_(n) {}
  Bytes await_resume();
  void describe(std::ostream& os) const override;

 private:
  bool attempt() override;
  std::size_t n_;
  Bytes result_;
};

// Reads into `buf`; returns how many bytes (0 at EOF).
class [[nodiscard]] SockRecvInto final : public detail::SockWait {
 public:
  SockRecvInto(EventLoop& loop, int fd, std::span<std::byte> buf) noexcept : SockWait(loop, fd, false), buf_(buf) {}
  std::size_t await_resume();
  void describe(std::ostream& os) const override;

 private:
  bool attempt() override;
  std::span<std::byte> buf_;
  std::size_t got_ = 0;
};

// Sends all of `data`.
class [[nodiscard]] SockSendall final : public detail::SockWait {
 public:
  SockSendall(EventLoop& loop, int fd, std::span<const std::byte> data) noexcept
      : SockWait(loop, fd, true), data_(data) {}
  void await_resume();
  void describe(std::ostream& os) const override;
  // How much was sent (all of it once the co_await returned; part of it if cancelled or failed).
  std::size_t sent() const noexcept { return sent_; }

 private:
  bool attempt() override;
  std::span<const std::byte> data_;
  std::size_t sent_ = 0;
};

// An accepted connection: the caller owns `fd` (non-blocking, close-on-exec).
struct Accepted {
  int fd = -1;
  SocketAddress address{};
};

class [[nodiscard]] SockAccept final : public detail::SockWait {
 public:
  SockAccept(EventLoop& loop, int fd) noexcept : SockWait(loop, fd, false) {}
  Accepted await_resume();
  void describe(std::ostream& os) const override;

 private:
  bool attempt() override;
  Accepted result_;
};

class [[nodiscard]] SockConnect final : public detail::SockWait {
 public:
  SockConnect(EventLoop& loop, int fd, const SocketAddress& address) noexcept
      : SockWait(loop, fd, true), address_(&address) {}
  void await_resume();
  void describe(std::ostream& os) const override;

 private:
  bool attempt() override;
  const SocketAddress* address_;
  bool started_ = false;  // connect(2) was called; now waiting for its outcome
};

inline SockRecv sock_recv(EventLoop& loop, int fd, std::size_t n) noexcept { return SockRecv(loop, fd, n); }
inline SockRecvInto sock_recv_into(EventLoop& loop, int fd, std::span<std::byte> buf) noexcept {
  return SockRecvInto(loop, fd, buf);
}
inline SockSendall sock_sendall(EventLoop& loop, int fd, std::span<const std::byte> data) noexcept {
  return SockSendall(loop, fd, data);
}
inline SockSendall sock_sendall(EventLoop& loop, int fd, std::string_view text) noexcept {
  return SockSendall(loop, fd, std::as_bytes(std::span(text.data(), text.size())));
}
inline SockAccept sock_accept(EventLoop& loop, int fd) noexcept { return SockAccept(loop, fd); }
inline SockConnect sock_connect(EventLoop& loop, int fd, const SocketAddress& address) noexcept {
  return SockConnect(loop, fd, address);
}

}  // namespace tulipa
