// LISTEN / NOTIFY as an async stream on a connection of its own.
//
//   Listener events(conninfo);
//   co_await events.listen("chat_room_7");
//   for (;;) { Notification n = co_await events.next(); handle(n.channel, n.payload); }
//
// When the connection is lost (a server restart, a network failure), next() reconnects with a growing pause
// (50 ms doubling to 2 s), LISTENs again to every channel, and goes on waiting: the stream survives the outage, but
// notifications sent while no connection listened are lost (PostgreSQL does not keep them); reconnects() counts the
// outages so a user can resynchronise. Cancel the task awaiting next() to stop. Loop thread only.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tulipa/postgres/connection.hpp"

namespace tulipa::postgres {

class Listener {
 public:
  explicit Listener(std::string conninfo, ConnectOptions options = {});
  // LISTEN (connecting first if needed). The channel name is quoted as an identifier (case kept).
  Coro<void> listen(std::string channel);
  Coro<void> unlisten(std::string channel);
  // The next notification on any listened channel, reconnecting as needed (see top).
  Coro<Notification> next();
  std::size_t reconnects() const noexcept { return reconnects_; }
  const std::vector<std::string>& channels() const noexcept { return channels_; }
  Connection& connection() noexcept { return conn_; }

 private:
  Coro<void> connect_and_subscribe();
  std::string quoted(const std::string& channel) const;

  std::string conninfo_;
  ConnectOptions options_;
  Connection conn_;
  std::vector<std::string> channels_;
  std::size_t reconnects_ = 0;
  bool connected_once_ = false;
};

}  // namespace tulipa::postgres
