#include "store.hpp"

#include <memory>
#include <stdexcept>
#include <utility>

namespace chat {

void MemoryStore::append(Message msg, Accepted done) {
  if (failing_) {
    loop_.call_soon([done = std::move(done)] {
      done({}, std::make_exception_ptr(std::runtime_error("the store refused the message")));
    });
    return;
  }
  msg.id = next_id_++;
  messages_.push_back(msg);
  // Through a shared copy: a Message with its strings is larger than a loop callback's inline space anyway.
  auto pending = std::make_shared<std::pair<Message, Accepted>>(std::move(msg), std::move(done));
  loop_.call_soon([pending] { pending->second(std::move(pending->first), nullptr); });
}

std::map<std::string, std::vector<Message>> MemoryStore::load_recent(std::size_t per_room) {
  std::map<std::string, std::vector<Message>> out;
  for (const Message& m : messages_) out[m.room].push_back(m);
  for (auto& [room, list] : out) {
    if (list.size() > per_room) list.erase(list.begin(), list.end() - static_cast<std::ptrdiff_t>(per_room));
  }
  return out;
}

void MemoryStore::flush(std::function<void()> done) {
  // Appends complete in order at the next pass; this callback is queued behind every one made so far.
  loop_.call_soon([done = std::move(done)] { done(); });
}

}  // namespace chat
