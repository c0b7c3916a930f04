#include "tulipa/postgres/listener.hpp"

#include <libpq-fe.h>

#include <algorithm>

#include "postgres/connection_impl.hpp"
#include "tulipa/sleep.hpp"

namespace tulipa::postgres {

Listener::Listener(std::string conninfo, ConnectOptions options)
    : conninfo_(std::move(conninfo)), options_(std::move(options)) {}

std::string Listener::quoted(const std::string& channel) const {
  char* q = PQescapeIdentifier(conn_.impl()->pg(), channel.data(), channel.size());
  if (!q)
    throw ConnectionError("postgres: cannot quote channel name: " + std::string(PQerrorMessage(conn_.impl()->pg())));
  std::string s(q);
  PQfreemem(q);
  return s;
}

Coro<void> Listener::connect_and_subscribe() {
  conn_ = co_await Connection::connect(conninfo_, options_);
  for (const std::string& ch : channels_) co_await conn_.query("LISTEN " + quoted(ch));
  if (connected_once_) ++reconnects_;
  connected_once_ = true;
}

Coro<void> Listener::listen(std::string channel) {
  if (!conn_.is_open()) co_await connect_and_subscribe();
  co_await conn_.query("LISTEN " + quoted(channel));
  if (std::find(channels_.begin(), channels_.end(), channel) == channels_.end()) channels_.push_back(channel);
}

Coro<void> Listener::unlisten(std::string channel) {
  std::erase(channels_, channel);
  if (conn_.is_open()) co_await conn_.query("UNLISTEN " + quoted(channel));
}

Coro<Notification> Listener::next() {
  Duration pause = std::chrono::milliseconds(50);
  for (;;) {
    if (!conn_.is_open()) {
      bool up = false;
      try {
        co_await connect_and_subscribe();
        up = true;
        pause = std::chrono::milliseconds(50);
      } catch (const std::exception&) {
        conn_.close();
      }
      if (!up) {  // the server is not back yet
        co_await sleep(pause);
        pause = std::min<Duration>(pause * 2, std::chrono::seconds(2));
        continue;
      }
    }
    try {
      co_return co_await conn_.next_notification();
    } catch (const ConnectionError&) {
      conn_.close();  // lost: reconnect above
    }
  }
}

}  // namespace tulipa::postgres
