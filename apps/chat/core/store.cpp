#include "store.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <utility>

namespace chat {
namespace {

// The rows of `all` (in id order) that are room `room`'s messages after `after_id`, at most `limit`.
std::vector<Message> select_after(const std::vector<Message>& all, std::string_view room, std::uint64_t after_id,
                                  std::size_t limit) {
  std::vector<Message> out;
  for (const Message& m : all) {
    if (out.size() == limit) break;
    if (m.to.empty() && m.room == room && m.id > after_id) out.push_back(m);
  }
  return out;
}

}  // namespace

void MemoryStore::append(Message msg, Accepted done) {
  if (failing_) {
    loop_.call_soon([done = std::move(done)] {
      done({}, std::make_exception_ptr(std::runtime_error("the store refused the message")));
    });
    return;
  }
  msg.id = next_id_++;
  msg.seq = msg.to.empty() ? ++last_seq_[msg.room] : 0;
  messages_.push_back(msg);
  // Through a shared copy: a Message with its strings is larger than a loop callback's inline space anyway.
  auto pending = std::make_shared<std::pair<Message, Accepted>>(std::move(msg), std::move(done));
  loop_.call_soon([pending] { pending->second(std::move(pending->first), nullptr); });
}

void MemoryStore::messages_after(std::string room, std::uint64_t after_id, std::size_t limit, Loaded done) {
  auto pending = std::make_shared<std::pair<std::vector<Message>, Loaded>>(
      select_after(messages_, room, after_id, limit), std::move(done));
  loop_.call_soon([pending] { pending->second(std::move(pending->first), nullptr); });
}

tulipa::Coro<std::map<std::string, std::vector<Message>>> MemoryStore::load_recent(std::size_t per_room) {
  std::map<std::string, std::vector<Message>> out;
  per_room = std::max<std::size_t>(per_room, 1);
  for (const Message& m : messages_) {
    if (m.to.empty()) out[m.room].push_back(m);
  }
  for (auto& [room, list] : out) {
    if (list.size() > per_room) list.erase(list.begin(), list.end() - static_cast<std::ptrdiff_t>(per_room));
  }
  co_return out;
}

void MemoryStore::flush(std::function<void()> done) {
  // Appends complete in order at the next pass; this callback is queued behind every one made so far.
  loop_.call_soon([done = std::move(done)] { done(); });
}

}  // namespace chat
