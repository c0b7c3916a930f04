// Connection::connect: DNS on tulipa's resolver, then PQconnectStartParams / PQconnectPoll driven by the loop.
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstdlib>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "postgres/connection_impl.hpp"
#include "postgres/errors.hpp"
#include "tulipa/dns.hpp"
#include "tulipa/timeout.hpp"

namespace tulipa::postgres {

namespace {

// Waits for one readiness of `fd` (connect time only: the fd may change between waits), or the deadline.
class FdWait final : public Suspension, public IoWatcher {
 public:
  FdWait(EventLoop& loop, int fd, Events events, TimePoint deadline) noexcept
      : loop_(loop), fd_(fd), events_(events), deadline_(deadline) {}
  FdWait(FdWait&& o) noexcept : Suspension(), loop_(o.loop_), fd_(o.fd_), events_(o.events_), deadline_(o.deadline_) {}
  ~FdWait() { stop(); }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (!park(h)) return false;
    loop_.watch(fd_, events_, this);
    watching_ = true;
    timer_ = loop_.call_at(deadline_, [this] {
      timed_out_ = true;
      stop();
      wake();
    });
    return true;
  }
  // False when the deadline passed.
  bool await_resume() const {
    check_cancelled();
    return !timed_out_;
  }
  void describe(std::ostream& os) const override { os << "postgres connect (fd " << fd_ << ")"; }

 private:
  void on_io(Events) override {
    stop();
    wake();
  }
  Cancel on_cancel() noexcept override {
    stop();
    return Cancel::detached;
  }
  void stop() noexcept {
    if (watching_) loop_.unwatch(fd_);
    watching_ = false;
    timer_.cancel();
  }
  EventLoop& loop_;
  int fd_;
  Events events_;
  TimePoint deadline_;
  TimerHandle timer_;
  bool watching_ = false;
  bool timed_out_ = false;
};

bool numeric_host(const std::string& h) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

struct PgFinish {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};

}  // namespace

Coro<Connection> Connection::connect(std::string conninfo, ConnectOptions options) {
  EventLoop& loop = get_running_loop();
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &err);
  if (!parsed) {
    std::string m = err ? err : "out of memory";
    if (err) PQfreemem(err);
    while (!m.empty() && m.back() == '\n') m.pop_back();
    throw ConnectionError("postgres: invalid connection string: " + m);
  }
  std::vector<std::string> keys, values;
  for (PQconninfoOption* o = parsed; o->keyword; ++o) {
    if (o->val) {
      keys.emplace_back(o->keyword);
      values.emplace_back(o->val);
    }
  }
  PQconninfoFree(parsed);
  auto find = [&](const char* key) -> std::string* {
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &values[i];
    return nullptr;
  };

  Duration limit = std::chrono::seconds(30);
  if (options.connect_timeout) {
    limit = *options.connect_timeout;
  } else if (std::string* t = find("connect_timeout"); t && std::atoi(t->c_str()) > 0) {
    limit = std::chrono::seconds(std::max(2, std::atoi(t->c_str())));  // libpq's minimum
  }
  TimePoint deadline = loop.time() + limit;
  auto timed_out = [&] {
    return ConnectionError("postgres: connection timed out after " +
                           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(limit).count()) +
                           " ms");
  };

  // Host names: resolved here, without blocking the loop, and given to libpq as hostaddr.
  std::string* host = find("host");
  if (host && !host->empty() && !find("hostaddr")) {
    std::string addrs;
    bool any_name = false;
    std::vector<std::string> hosts = split(*host);
    for (std::size_t i = 0; i < hosts.size(); ++i) {
      const std::string& h = hosts[i];
      if (i) addrs += ',';
      if (h.empty() || h[0] == '/' || h[0] == '@') continue;  // a Unix socket: no address
      if (numeric_host(h)) {
        addrs += h;
        continue;
      }
      any_name = true;
      std::vector<AddrInfo> found;
      try {
        found =
            co_await wait_for(getaddrinfo(loop, h, "", AddrInfoHints{0, SOCK_STREAM, 0, 0}), deadline - loop.time());
      } catch (const TimeoutError&) {
        throw timed_out();
      } catch (const GaiError& e) {
        throw ConnectionError(std::string("postgres: could not resolve host \"") + h + "\": " + e.what());
      }
      if (found.empty()) throw ConnectionError("postgres: host \"" + h + "\" has no address");
      addrs += found.front().address.host();
    }
    if (any_name) {
      keys.emplace_back("hostaddr");
      values.push_back(addrs);
    }
  }

  std::vector<const char*> k, v;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    k.push_back(keys[i].c_str());
    v.push_back(values[i].c_str());
  }
  k.push_back(nullptr);
  v.push_back(nullptr);
  std::unique_ptr<PGconn, PgFinish> pg(PQconnectStartParams(k.data(), v.data(), 0));
  if (!pg) throw std::bad_alloc();
  if (PQstatus(pg.get()) == CONNECTION_BAD) throw ConnectionError("postgres: " + detail::error_message(pg.get()));

  // libpq's loop, driven by readiness: the socket may be a new one after each step (another host, a retry).
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  for (;;) {
    if (state == PGRES_POLLING_OK) break;
    if (state == PGRES_POLLING_FAILED) throw ConnectionError("postgres: " + detail::error_message(pg.get()));
    Events want = state == PGRES_POLLING_READING ? Events::read : Events::write;
    if (!co_await FdWait(loop, PQsocket(pg.get()), want, deadline)) throw timed_out();
    state = PQconnectPoll(pg.get());
  }
  auto impl = std::make_unique<detail::ConnectionImpl>(loop, pg.get(), std::move(options));
  (void)pg.release();
  co_return Connection(std::move(impl));
}

Connection::Connection() noexcept = default;
Connection::Connection(std::unique_ptr<detail::ConnectionImpl> impl) noexcept : impl_(std::move(impl)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

void Connection::close() noexcept {
  if (impl_) impl_->close("connection closed");
}
bool Connection::is_open() const noexcept { return impl_ && !impl_->closed(); }
bool Connection::is_idle() const noexcept { return impl_ && impl_->idle(); }
std::size_t Connection::in_flight() const noexcept { return impl_ ? impl_->in_flight() : 0; }
int Connection::backend_pid() const noexcept { return impl_ && impl_->pg() ? PQbackendPID(impl_->pg()) : 0; }
std::string Connection::parameter(const char* name) const {
  const char* v = impl_ && impl_->pg() ? PQparameterStatus(impl_->pg(), name) : nullptr;
  return v ? v : "";
}
std::size_t Connection::cached_statements() const noexcept { return impl_ ? impl_->cached_statements() : 0; }

Coro<Notification> Connection::next_notification() {
  if (!impl_) throw ConnectionError("postgres: not connected");
  detail::ConnectionImpl& c = *impl_;
  while (c.notifications.empty()) {
    if (c.closed()) throw ConnectionError("postgres: " + c.close_reason());
    co_await detail::SlotWait(c.notify_waiter);
  }
  Notification n = std::move(c.notifications.front());
  c.notifications.pop_front();
  co_return n;
}

}  // namespace tulipa::postgres
