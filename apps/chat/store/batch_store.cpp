#include "batch_store.hpp"

#include <exception>
#include <utility>

#include "tulipa/task.hpp"

namespace chat {

void ReadingStore::messages_after(std::string room, std::uint64_t after_id, std::size_t limit, Loaded done) {
  ++reads_;
  tulipa::create_task(loop_, reader(std::move(room), after_id, limit, std::move(done)), "chat store read");
}

tulipa::Coro<void> ReadingStore::reader(std::string room, std::uint64_t after_id, std::size_t limit, Loaded done) {
  std::vector<Message> got;
  std::exception_ptr error;
  try {
    tulipa::Coro<std::vector<Message>> reading = read_after(std::move(room), after_id, limit);
    got = co_await std::move(reading);
  } catch (const std::exception&) {
    error = std::current_exception();
  }
  --reads_;
  done(std::move(got), error);
  idle_check();
}

void ReadingStore::flush(std::function<void()> done) {
  if (!writing() && reads_ == 0) {
    loop_.call_soon(std::move(done));
    return;
  }
  flush_waiters_.push_back(std::move(done));
}

void ReadingStore::idle_check() {
  if (writing() || reads_ > 0) return;
  for (auto& waiter : std::exchange(flush_waiters_, {})) waiter();
}

void BatchStore::append(Message msg, Accepted done) {
  pending_.push_back({std::move(msg), std::move(done)});
  if (writing_) return;
  writing_ = true;
  tulipa::create_task(loop_, writer(), "chat store writer");
}

tulipa::Coro<void> BatchStore::writer() {
  while (!pending_.empty()) {
    std::vector<Pending> batch = std::move(pending_);
    pending_.clear();
    std::vector<Message> messages;
    messages.reserve(batch.size());
    for (Pending& p : batch) messages.push_back(std::move(p.msg));
    std::exception_ptr error;
    try {
      tulipa::Coro<std::vector<Message>> writing = write_batch(std::move(messages));
      messages = co_await std::move(writing);
      ++transactions_;
    } catch (const std::exception&) {
      error = std::current_exception();
    }
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(error ? Message{} : std::move(messages[i]), error);
  }
  writing_ = false;
  idle_check();
}

}  // namespace chat
