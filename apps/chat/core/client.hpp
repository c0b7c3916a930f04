// What the hub needs of a connection, whatever carries it (a TCP line client, a WebSocket): the hub formats each
// member's events into its wire format, gathers what one member is sent during a loop pass, and hands it over in
// one write().
#pragma once

#include <cstddef>
#include <string_view>

#include "format.hpp"

namespace chat {

class Client {
 public:
  virtual ~Client() = default;
  virtual WireFormat format() const noexcept = 0;
  // Sends `batch` (one or more whole events). Never blocks: what the socket does not take waits in the transport.
  virtual void write(std::string_view batch) = 0;
  // Bytes written but not yet taken by the peer; the hub adds its own pending bytes and disconnects a client whose
  // total passes Limits::max_queue.
  virtual std::size_t write_buffer_size() const noexcept = 0;
  // Ends the connection after what was written; a peer that does not read it within a short grace is cut off. The
  // client's reading side ends too, and the connection's owner then calls Hub::disconnect.
  virtual void close() = 0;
};

}  // namespace chat
