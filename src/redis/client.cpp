// Client (the shared connection), the pool of exclusive Connections.
#include <ostream>

#include "core.hpp"
#include "tulipa/redis/client.hpp"
#include "tulipa/redis/pubsub.hpp"
#include "tulipa/sync.hpp"

namespace tulipa::redis {

namespace detail {

void CommandBase::describe(std::ostream& os) const {
  os << "redis command #" << seq_ << (queued_ ? " (in flight)" : "");
}

struct Pool {
  Pool(EventLoop& l, Options o)
      : loop(l),
        options(std::make_shared<const Options>(std::move(o))),
        slots(options->max_exclusive ? options->max_exclusive : 1) {}

  Core& shared_core() {
    if (!shared) shared = std::make_unique<Core>(loop, options, &opened);
    return *shared;
  }
  // A leased connection comes back: kept if it is in a known, clean state, else closed.
  void give_back(Core* c) noexcept {
    if (!closed && c->clean())
      idle.emplace_back(c);
    else
      delete c;
    slots.release();
  }

  EventLoop& loop;
  std::shared_ptr<const Options> options;
  std::uint64_t opened = 0;
  std::unique_ptr<Core> shared;
  std::vector<std::unique_ptr<Core>> idle;
  Semaphore slots;
  bool closed = false;
};

}  // namespace detail

Client::Client(EventLoop& loop, Options options) : pool_(std::make_unique<detail::Pool>(loop, std::move(options))) {
  if (pool_->options->protocol != 2 && pool_->options->protocol != 3)
    throw std::invalid_argument("redis: protocol must be 2 or 3");
}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    close();
    pool_ = std::move(o.pool_);
  }
  return *this;
}
Client::~Client() { close(); }

void Client::close() noexcept {
  if (!pool_) return;
  pool_->closed = true;
  if (pool_->shared) pool_->shared->close("redis: client closed", true);
  pool_->idle.clear();
}

const Options& Client::options() const noexcept { return *pool_->options; }
EventLoop& Client::loop() const noexcept { return pool_->loop; }
std::uint64_t Client::connections_opened() const noexcept { return pool_->opened; }

detail::Core* Client::core_for_commands() noexcept { return &pool_->shared_core(); }

Coro<void> Client::connect() { co_await ping(); }

Coro<Connection> Client::exclusive() {
  detail::Pool* pool = pool_.get();
  if (pool->closed) throw ConnectionError("redis: client closed");
  co_await pool->slots.acquire();
  std::unique_ptr<detail::Core> c;
  while (!pool->idle.empty() && !c) {
    c = std::move(pool->idle.back());
    pool->idle.pop_back();
    if (!c->clean()) c.reset();  // lost while idle
  }
  if (!c) {
    c = std::make_unique<detail::Core>(pool->loop, pool->options, &pool->opened);
    c->set_track_state(true);
  }
  co_return Connection(pool, c.release());
}

Subscriber Client::subscriber() { return Subscriber(pool_->loop, *pool_->options); }

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    if (core_) pool_->give_back(core_);
    pool_ = std::exchange(o.pool_, nullptr);
    core_ = std::exchange(o.core_, nullptr);
  }
  return *this;
}

Connection::~Connection() {
  if (core_) pool_->give_back(core_);
}

void Connection::close() noexcept {
  if (core_) core_->close("redis: connection closed by its user", true);
}

}  // namespace tulipa::redis
