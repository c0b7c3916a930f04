// How instances of tulipa-chat that share one store tell each other about the messages they stored (--redis:
// bus/redis_bus.hpp). Each hub publishes the messages it stored; the bus hands the other instances' messages to
// Hub::deliver, and calls Hub::resync after it may have missed some (a lost connection). Order, duplicates and
// losses are the hub's business (a room's `seq`, store.hpp), so a bus may deliver late, twice or not at all.
#pragma once

#include "message.hpp"

namespace chat {

class Bus {
 public:
  virtual ~Bus() = default;
  // Tells the other instances about `m` (stored: it has its id and seq). Never blocks; loop thread.
  virtual void publish(const Message& m) = 0;
};

}  // namespace chat
