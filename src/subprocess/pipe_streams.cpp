// PipeReader and PipeWriter (process.hpp) over the state a ProcessProtocol feeds (process_state.hpp).
#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "subprocess/process_state.hpp"
#include "tulipa/process.hpp"

namespace tulipa {
namespace detail {

// --------------------------------------------------------------------------- PipeReaderCore

void PipeReaderCore::wake() noexcept {
  if (waiter) {
    waiter.try_set_result();  // false if the reading task was cancelled meanwhile: nothing to do
    waiter = nullptr;
  }
}

void PipeReaderCore::feed(std::span<const std::byte> d) {
  buf.append(reinterpret_cast<const char*>(d.data()), d.size());
  wake();
  // Flow control as asyncio's StreamReader: pause the pipe above twice the limit, so the child blocks writing.
  if (!unbounded && reading_all == 0 && !paused && transport && size() > 2 * limit) {
    paused = true;
    transport->pause_reading();
  }
}

void PipeReaderCore::feed_eof() {
  eof = true;
  transport = nullptr;
  wake();
}

void PipeReaderCore::set_error(std::exception_ptr e) {
  error = std::move(e);
  eof = true;
  transport = nullptr;
  wake();
}

Future<void> PipeReaderCore::wait() {
  if (waiter && !waiter.done())
    throw std::logic_error("PipeReader: a read is already waiting for data on this pipe (reads may not overlap)");
  waiter = Future<void>(*loop);
  return waiter;
}

Bytes PipeReaderCore::take(std::size_t n) {
  Bytes out(data().first(n));
  pos += n;
  if (pos == buf.size()) {
    buf.clear();
    pos = 0;
  } else if (pos >= 4096 && pos * 2 >= buf.size()) {
    buf.erase(0, pos);  // compact once half of the string is consumed: amortised O(1) per byte
    pos = 0;
  }
  if (paused && transport && size() <= limit) {
    paused = false;
    transport->resume_reading();
  }
  return out;
}

void PipeReaderCore::drop_all() noexcept {
  buf.clear();
  pos = 0;
  if (paused && transport) {
    paused = false;
    transport->resume_reading();
  }
}

void PipeReaderCore::set_unbounded() {
  unbounded = true;
  if (paused && transport) {
    paused = false;
    transport->resume_reading();
  }
}

PipeReaderCore::ReadingAll::ReadingAll(PipeReaderCore& core) : c(core) {
  ++c.reading_all;
  if (c.paused && c.transport) {
    c.paused = false;
    c.transport->resume_reading();
  }
}

void ProcessState::wake_all(std::vector<Future<void>>& waiters) noexcept {
  for (auto& w : waiters) w.try_set_result();
  waiters.clear();
}

// The coroutines take the shared state by value, so they never depend on the PipeReader object itself.
Coro<Bytes> read_pipe(std::shared_ptr<PipeReaderCore> c, std::ptrdiff_t n) {
  if (n == 0) co_return Bytes{};
  if (n < 0) {
    PipeReaderCore::ReadingAll all(*c);
    while (!c->eof) co_await c->wait();
    if (c->error) std::rethrow_exception(c->error);
    co_return c->take(c->size());
  }
  while (c->size() == 0 && !c->eof) co_await c->wait();
  if (c->size() == 0 && c->error) std::rethrow_exception(c->error);
  co_return c->take(std::min(c->size(), static_cast<std::size_t>(n)));
}

}  // namespace detail

// --------------------------------------------------------------------------- PipeReader

Coro<Bytes> PipeReader::read(std::ptrdiff_t n) { return detail::read_pipe(core_, n); }

Coro<Bytes> PipeReader::readline() {
  std::shared_ptr<detail::PipeReaderCore> c = core_;
  std::size_t scanned = 0;  // bytes already searched for '\n'
  for (;;) {
    auto d = c->data();
    auto it = std::find(d.begin() + static_cast<std::ptrdiff_t>(scanned), d.end(), std::byte{'\n'});
    if (it != d.end()) {
      std::size_t len = static_cast<std::size_t>(it - d.begin()) + 1;
      if (len > detail::PipeReaderCore::limit) {
        c->take(len);
        throw std::length_error("PipeReader::readline: line longer than the limit");
      }
      co_return c->take(len);
    }
    scanned = d.size();
    if (scanned > detail::PipeReaderCore::limit) {
      c->drop_all();
      throw std::length_error("PipeReader::readline: line longer than the limit");
    }
    if (c->eof) {
      if (c->size() == 0 && c->error) std::rethrow_exception(c->error);
      co_return c->take(c->size());
    }
    co_await c->wait();
  }
}

Coro<Bytes> PipeReader::readexactly(std::size_t n) {
  std::shared_ptr<detail::PipeReaderCore> c = core_;
  while (c->size() < n && !c->eof) co_await c->wait();
  if (c->size() < n) {
    if (c->error) std::rethrow_exception(c->error);
    throw std::runtime_error("PipeReader::readexactly: incomplete read (" + std::to_string(c->size()) + " of " +
                             std::to_string(n) + " bytes before EOF)");
  }
  co_return c->take(n);
}

bool PipeReader::at_eof() const noexcept { return core_->eof && core_->size() == 0; }
std::size_t PipeReader::buffered() const noexcept { return core_->size(); }

// --------------------------------------------------------------------------- PipeWriter

void PipeWriter::write(std::span<const std::byte> data) {
  if (st_->in_closed) throw std::logic_error("PipeWriter::write after close()");
  if (st_->in) {
    st_->in->write(data);  // throws std::logic_error after close()
  } else if (!st_->in_lost) {
    throw std::logic_error("PipeWriter::write: the child's stdin is closed");
  }
  // Lost because the child closed its end: dropped, as asyncio does; drain() reports it.
}

Coro<void> PipeWriter::drain() {
  std::shared_ptr<detail::ProcessState> st = st_;
  if (st->in && st->in->is_closing() && !st->in_closed) {
    // The pipe broke (a write met EPIPE) and its loss is on its way to the protocol: wait for it, so that drain()
    // reports it (asyncio yields once here for the same reason).
    Future<void> f(*st->loop);
    st->closed_waiters.push_back(f);
    co_await f;
  }
  while (st->write_paused && !st->in_lost) {
    Future<void> f(*st->loop);
    st->drain_waiters.push_back(f);
    co_await f;
  }
  if (st->in_lost) {
    if (st->in_error) std::rethrow_exception(st->in_error);
    throw std::system_error(ECONNRESET, std::generic_category(), "PipeWriter::drain: the child's stdin is closed");
  }
}

void PipeWriter::close() {
  st_->in_closed = true;
  if (st_->in) st_->in->close();
}

bool PipeWriter::is_closing() const noexcept { return !st_->in || st_->in->is_closing(); }

Coro<void> PipeWriter::wait_closed() {
  std::shared_ptr<detail::ProcessState> st = st_;
  if (st->in_lost) co_return;
  Future<void> f(*st->loop);
  st->closed_waiters.push_back(f);
  co_await f;
}

std::size_t PipeWriter::get_write_buffer_size() const noexcept {
  return st_->in ? st_->in->get_write_buffer_size() : 0;
}

}  // namespace tulipa
