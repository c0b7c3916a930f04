#include "loop_bus.hpp"

#include <exception>
#include <stdexcept>
#include <utility>

#include "core/text.hpp"

namespace chat {

LoopHubs::LoopHubs(const std::vector<tulipa::EventLoop*>& loops, std::size_t capacity) : hubs_(loops.size()) {
  for (std::size_t i = 0; i < loops.size(); ++i) {
    boxes_.push_back(std::make_unique<tulipa::Mailbox<Message>>(*loops[i], capacity, [this, i](Message&& m) {
      if (Hub* hub = hubs_[i]) hub->deliver(std::move(m));
    }));
  }
}

bool LoopHubs::send(std::size_t i, const Message& m) {
  try {
    return boxes_[i]->try_send(m);
  } catch (const std::logic_error&) {
    return true;  // that loop is closed: nobody there to tell
  }
}

LoopBus::LoopBus(tulipa::EventLoop& loop, LoopHubs& hubs, std::size_t index)
    : loop_(loop), hubs_(hubs), index_(index), guest_prefix_("guest-" + std::to_string(index) + "-") {}

LoopBus::~LoopBus() { retry_.cancel(); }

void LoopBus::publish(const Message& m) {
  for (std::size_t i = 0; i < hubs_.size(); ++i) {
    if (i == index_) continue;
    if (!outbox_.empty() || !hubs_.send(i, m)) outbox_.emplace_back(i, m);
  }
  if (!outbox_.empty()) retry();
}

// What a full box refused goes again, in order, a millisecond later.
void LoopBus::retry() {
  if (retrying_) return;
  retrying_ = true;
  retry_ = loop_.call_later(std::chrono::milliseconds(1), [this] {
    retrying_ = false;
    while (!outbox_.empty() && hubs_.send(outbox_.front().first, outbox_.front().second)) outbox_.pop_front();
    if (!outbox_.empty()) retry();
  });
}

void LoopBus::claim(std::string key, Done done) {
  bool ok;
  {
    std::lock_guard lock(hubs_.nicks_lock_);
    auto [it, added] = hubs_.nicks_.try_emplace(std::move(key), index_);
    ok = added || it->second == index_;
  }
  loop_.call_soon([done = std::move(done), ok] { done(ok, {}); });
}

void LoopBus::release(std::string key) {
  std::lock_guard lock(hubs_.nicks_lock_);
  auto it = hubs_.nicks_.find(key);
  if (it != hubs_.nicks_.end() && it->second == index_) hubs_.nicks_.erase(it);
}

void LoopBus::route(const Message& m, Done done) {
  std::string key = fold(m.to);
  std::size_t target = hubs_.size();
  if (key.starts_with("guest-")) {
    std::size_t end = key.find('-', 6);
    if (end != std::string::npos) {
      std::size_t n = 0;
      for (std::size_t i = 6; i < end && n <= hubs_.size(); ++i) {
        if (key[i] < '0' || key[i] > '9') {
          n = hubs_.size();
          break;
        }
        n = n * 10 + static_cast<std::size_t>(key[i] - '0');
      }
      target = n;
    }
  } else {
    std::lock_guard lock(hubs_.nicks_lock_);
    if (auto it = hubs_.nicks_.find(key); it != hubs_.nicks_.end()) target = it->second;
  }
  bool ok = target < hubs_.size() && target != index_ && hubs_.send(target, m);
  std::string error = target < hubs_.size() && target != index_ && !ok ? "that loop is too busy" : "";
  loop_.call_soon([done = std::move(done), ok, error = std::move(error)] { done(ok, error); });
}

}  // namespace chat
