// Protocols: what the user writes to handle a connection (PEP 3156). The transport calls these methods; the
// protocol calls the transport's methods (write, close, ...). Mirrors CPython's asyncio/protocols.py.
//
// Call order, for a stream protocol (Protocol or BufferedProtocol):
//
//     start -> connection_made
//         [-> data_received | get_buffer/buffer_updated]*
//         [-> eof_received]?
//     -> connection_lost -> end
//
// pause_writing() and resume_writing() may come between connection_made and connection_lost, strictly alternating,
// pause first. connection_lost is called exactly once for every connection_made, never from inside another protocol
// method of the same transport (it always runs as its own loop callback).
//
// For a DatagramProtocol:   start -> connection_made [-> datagram_received | error_received]* -> connection_lost -> end
//
// Lifetimes:
// - The transport owns its protocol (the factory's std::unique_ptr is handed to it) and destroys it right after
//   connection_lost returned, then destroys itself. The Transport& given to connection_made stays valid until
//   connection_lost returns; do not use it afterwards.
// - data_received's span is borrowed from a buffer the loop shares between all connections: it is valid only
//   during the call. Copy what you keep.
// - BufferedProtocol::get_buffer's span is lent by the protocol to the transport until the matching buffer_updated
//   (or until connection_lost if the read failed); the transport writes at most span.size() bytes into it.
//
// Exceptions: an exception thrown from a protocol method is reported through the loop's exception handler and the
// transport is closed at once (abort), with connection_lost(that exception).
#pragma once

#include <cstddef>
#include <exception>
#include <span>
#include <system_error>

#include "tulipa/socket_address.hpp"

namespace tulipa {

class Transport;
class DatagramTransport;

// What every protocol has. `exc` in connection_lost is null for a regular close (EOF, close(), abort()) and the
// error otherwise (a std::system_error for an OS error such as ECONNRESET).
class BaseProtocol {
 public:
  virtual ~BaseProtocol() = default;
  virtual void connection_lost(std::exception_ptr exc) { (void)exc; }
  // Flow control: the transport's write buffer went above the high-water mark (pause) and back down to the
  // low-water mark (resume). Writing while paused still works; it only grows the buffer.
  virtual void pause_writing() {}
  virtual void resume_writing() {}
};

// The part shared by Protocol and BufferedProtocol (asyncio has no name for it: both take a stream Transport).
class StreamProtocol : public BaseProtocol {
 public:
  virtual void connection_made(Transport& transport) { (void)transport; }
  // The peer closed its sending side. Return true to keep the transport open (half-close: you may still write,
  // then close()); false closes the transport. After this no more data arrives.
  virtual bool eof_received() { return false; }

  bool is_buffered() const noexcept { return buffered_; }

 protected:
  explicit StreamProtocol(bool buffered) noexcept : buffered_(buffered) {}

 private:
  bool buffered_;
};

// Receives data as it arrives, in a span borrowed from the loop's shared read buffer: an idle connection holds no
// read buffer at all.
class Protocol : public StreamProtocol {
 public:
  Protocol() noexcept : StreamProtocol(false) {}
  // `data` is valid only during the call (see Lifetimes above). Never empty.
  virtual void data_received(std::span<const std::byte> data) { (void)data; }
};

// Receives data straight into the protocol's own memory, with no copy from a shared buffer.
class BufferedProtocol : public StreamProtocol {
 public:
  BufferedProtocol() noexcept : StreamProtocol(true) {}
  // Returns where the next read goes; size_hint is the most the transport would like to read (a hint only).
  // Returning an empty span is an error: the transport aborts with std::logic_error.
  virtual std::span<std::byte> get_buffer(std::size_t size_hint) = 0;
  // `nbytes` (> 0) bytes were written at the start of the span get_buffer returned.
  virtual void buffer_updated(std::size_t nbytes) = 0;
};

class DatagramProtocol : public BaseProtocol {
 public:
  virtual void connection_made(DatagramTransport& transport) { (void)transport; }
  // `data` is valid only during the call; `from` is the sender. Empty datagrams are delivered too.
  virtual void datagram_received(std::span<const std::byte> data, const SocketAddress& from) {
    (void)data;
    (void)from;
  }
  // A send or receive failed with an error that does not end the endpoint (e.g. ECONNREFUSED from an ICMP
  // port-unreachable on a connected UDP socket).
  virtual void error_received(std::error_code error) { (void)error; }
};

}  // namespace tulipa
