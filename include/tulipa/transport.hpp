// Transports: the library's side of a connection (PEP 3156). A transport moves bytes; its protocol (protocol.hpp)
// decides what they mean. Mirrors CPython's asyncio/transports.py.
//
// Ownership and lifetimes:
// - A transport is created by the library (create_server's accept loop, create_connection, ...) and owned by the
//   library. It owns its protocol. After close() or abort() (or an error, or the peer's EOF when eof_received
//   returns false), connection_lost is called once as a loop callback, then the protocol and the transport are
//   destroyed. A Transport& stays valid until connection_lost returns.
// - write() copies nothing when the kernel takes all the data at once; whatever it did not take is copied into
//   the transport's write buffer, so the caller's span may be reused as soon as write() returns.
// - All members are called on the loop's thread only.
//
// Extra info: asyncio's get_extra_info(name) is spelt as typed accessors: peername(), sockname(), fd().
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>

#include "tulipa/protocol.hpp"
#include "tulipa/socket_address.hpp"

namespace tulipa {

class EventLoop;

class BaseTransport {
 public:
  // Closes the transport: buffered data is still sent (for streams), then connection_lost(nullptr) is called.
  // Idempotent.
  virtual void close() = 0;
  virtual bool is_closing() const noexcept = 0;
  virtual EventLoop& get_loop() const noexcept = 0;

  // The socket's addresses, asked from the kernel when called (a transport stores none, to stay small); they work
  // until connection_lost returns. Empty if the kernel refuses (e.g. the peer of a reset connection).
  virtual SocketAddress peername() const = 0;
  virtual SocketAddress sockname() const = 0;
  // The socket's file descriptor (valid until connection_lost returns). Borrowed: do not close it or read it.
  virtual int fd() const noexcept = 0;

 protected:
  ~BaseTransport() = default;
};

// Each class derives from BaseTransport alone, on purpose: asyncio's Transport is a mixin of ReadTransport and
// WriteTransport, but in C++ that diamond needs virtual inheritance, which costs a vtable pointer per base (three
// for a Transport) in every connection. So a Transport declares the reading and the writing methods again, with
// the meanings written once below, and has one vtable pointer. ReadTransport and WriteTransport are the one-way
// transports (a child's pipes, subprocess.hpp).

struct WriteBufferLimits {
  std::size_t high;
  std::size_t low;
};

// The reading side.
class ReadTransport : public BaseTransport {
 public:
  // Stops calling data_received until resume_reading(). No effect if already paused or closing.
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
  virtual bool is_reading() const noexcept = 0;

 protected:
  ~ReadTransport() = default;
};

// The writing side.
class WriteTransport : public BaseTransport {
 public:
  // Sends at once as much as the kernel takes, buffers the rest (see Ownership above). Empty data is ignored.
  // After write_eof() it throws std::logic_error. After close() data joins the buffer still being flushed; once
  // the connection is gone (abort, error, or close() with nothing left to flush) it is dropped, as asyncio does,
  // so that a broadcast to a departing peer is not an error.
  virtual void write(std::span<const std::byte> data) = 0;
  void write(std::string_view data) { write(std::as_bytes(std::span(data.data(), data.size()))); }
  // Writes several pieces with one vectored system call when the buffer is empty.
  virtual void writelines(std::span<const std::span<const std::byte>> pieces) = 0;
  void writelines(std::initializer_list<std::span<const std::byte>> pieces) {
    writelines(std::span<const std::span<const std::byte>>(pieces.begin(), pieces.size()));
  }

  // Bytes waiting in the write buffer.
  virtual std::size_t get_write_buffer_size() const noexcept = 0;
  // pause_writing() is called when the buffer grows above `high`, resume_writing() once it drained to `low` or
  // below. Defaults: high 64 KiB, low high/4 (as asyncio). low > high throws std::invalid_argument; high == 0
  // means pause_writing whenever anything is buffered.
  virtual void set_write_buffer_limits(std::size_t high = 64 * 1024, std::size_t low = SIZE_MAX) = 0;
  virtual WriteBufferLimits get_write_buffer_limits() const noexcept = 0;

  // Half-close: sends EOF once the buffer is flushed (shutdown(SHUT_WR)); reading goes on.
  virtual void write_eof() = 0;
  virtual bool can_write_eof() const noexcept = 0;
  // Closes at once: buffered data is dropped, connection_lost(nullptr) follows.
  virtual void abort() = 0;

 protected:
  ~WriteTransport() = default;
};

// A bidirectional stream (TCP, Unix stream socket): ReadTransport's and WriteTransport's methods, with their
// meanings.
class Transport : public BaseTransport {
 public:
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
  virtual bool is_reading() const noexcept = 0;

  virtual void write(std::span<const std::byte> data) = 0;
  void write(std::string_view data) { write(std::as_bytes(std::span(data.data(), data.size()))); }
  virtual void writelines(std::span<const std::span<const std::byte>> pieces) = 0;
  void writelines(std::initializer_list<std::span<const std::byte>> pieces) {
    writelines(std::span<const std::span<const std::byte>>(pieces.begin(), pieces.size()));
  }
  virtual std::size_t get_write_buffer_size() const noexcept = 0;
  virtual void set_write_buffer_limits(std::size_t high = 64 * 1024, std::size_t low = SIZE_MAX) = 0;
  virtual WriteBufferLimits get_write_buffer_limits() const noexcept = 0;
  virtual void write_eof() = 0;
  virtual bool can_write_eof() const noexcept = 0;
  virtual void abort() = 0;

  // The protocol this transport feeds. set_protocol swaps it (for protocols that hand over, e.g. a TLS upgrade)
  // and returns the previous one, which the caller now owns; the new protocol gets no connection_made.
  virtual StreamProtocol& get_protocol() const noexcept = 0;
  virtual std::unique_ptr<StreamProtocol> set_protocol(std::unique_ptr<StreamProtocol> protocol) = 0;

 protected:
  ~Transport() = default;
};

// A UDP (or Unix datagram) endpoint.
class DatagramTransport : public BaseTransport {
 public:
  // Sends one datagram to `to`, or to the connected peer when `to` is empty (std::logic_error if not connected;
  // std::invalid_argument if connected and `to` names another address). Buffered when the kernel would block.
  virtual void sendto(std::span<const std::byte> data, const SocketAddress& to = {}) = 0;
  void sendto(std::string_view data, const SocketAddress& to = {}) {
    sendto(std::as_bytes(std::span(data.data(), data.size())), to);
  }
  virtual std::size_t get_write_buffer_size() const noexcept = 0;
  virtual void abort() = 0;

 protected:
  ~DatagramTransport() = default;
};

}  // namespace tulipa
