// StreamRead: the one leaf awaiter behind read(), readline(), readuntil() and readexactly(). Its condition is
// checked by the stream state as data arrives, so a waiting read is woken once, when it can complete, and never
// needs a coroutine frame of its own.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ostream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "streams/stream_reader_protocol.hpp"
#include "tulipa/streams.hpp"

namespace tulipa {

IncompleteReadError::IncompleteReadError(Bytes partial, std::optional<std::size_t> expected)
    : std::runtime_error(std::to_string(partial.size()) + " bytes read on a total of " +
                         (expected ? std::to_string(*expected) : std::string("undefined")) + " expected bytes"),
      partial_(std::make_shared<Bytes>(std::move(partial))),
      expected_(expected) {}

namespace detail {

// The per-connection budget: every co_await of a read or a wait keeps its request and its awaiter in the
// handler's coroutine frame (streams.hpp).
static_assert(sizeof(StreamRead) <= 32 && sizeof(StreamWait) == 32, "awaiters outgrew their budget");
static_assert(sizeof(StreamReadRequest) <= 16 && sizeof(StreamWaitRequest) == 8, "requests outgrew their budget");
// StreamWait's link and StreamWaitRequest tag a connection's address with a bit (stream_awaiters.hpp).
static_assert(TaggedPtr<1>::fits<StreamReaderProtocol>);

StreamRead::StreamRead(detail::StreamReaderProtocol* conn, Kind kind, std::uint32_t n) noexcept
    : kind_(kind), conn_(conn) {
  if (kind_ == Kind::line) {
    sep_len_ = 1;
    search_from_ = 0;
  } else {
    n_ = n;
  }
  if (conn_) conn_->retain();
}

StreamRead::StreamRead(detail::StreamReaderProtocol* conn, std::uint16_t sep_len) noexcept
    : kind_(Kind::until), sep_len_(sep_len), search_from_(0), conn_(conn) {
  if (conn_) conn_->retain();
}

const std::byte* StreamRead::separator() const noexcept {
  static constexpr std::byte newline[] = {std::byte{'\n'}};
  // An `until` read is always a StreamReadUntil: only its constructor makes that kind (the protected one).
  if (kind_ == Kind::until) return static_cast<const StreamReadUntil*>(this)->sep_;
  return newline;
}

StreamRead::~StreamRead() {
  if (!conn_) return;
  conn_->unregister_read(this);  // if it is the pending read (the frame may go while suspended)
  conn_->release();
}

bool StreamRead::await_ready() {
  if (!conn_) throw std::logic_error("StreamReader: read on an empty (moved-from) reader");
  if (kind_ == Kind::until && sep_len_ == 0)
    throw std::invalid_argument("StreamReader.readuntil: the separator must have 1 to 65535 bytes");
  if (conn_->pending_read())
    throw std::logic_error("StreamReader: read called while another coroutine is already waiting for incoming data");
  return satisfied();
}

bool StreamRead::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  conn_->register_read(this);
  return true;
}

Suspension::Cancel StreamRead::on_cancel() noexcept {
  conn_->unregister_read(this);  // the data stays buffered for the next read
  return Cancel::detached;
}

bool StreamRead::satisfied() {
  const detail::StreamReaderProtocol& c = *conn_;
  if (c.exc_) return true;
  std::size_t used = c.buffered();
  switch (kind_) {
    case Kind::some:
      return n_ == 0 || used > 0 || c.eof_;
    case Kind::all:
      return c.eof_;
    case Kind::exactly:
      return used >= n_ || c.eof_;
    case Kind::until:
    case Kind::line: {
      if (used >= sep_len_) {
        const std::byte* base = c.buffer();
        const void* hit = ::memmem(base + search_from_, used - search_from_, separator(), sep_len_);
        if (hit) {
          search_from_ = static_cast<std::uint32_t>(static_cast<const std::byte*>(hit) - base);
          return true;
        }
        // The next search starts where a separator split by the end of the data could begin.
        search_from_ = static_cast<std::uint32_t>(used - sep_len_ + 1);
      }
      return c.eof_ || used > c.limit_;
    }
  }
  return true;
}

Bytes StreamRead::await_resume() {
  conn_->unregister_read(this);
  check_cancelled();
  detail::StreamReaderProtocol& c = *conn_;
  if (c.exc_) std::rethrow_exception(c.exc_);
  std::size_t used = c.buffered();
  switch (kind_) {
    case Kind::some:
      if (n_ == 0 || used == 0) return {};
      return c.take(std::min<std::size_t>(n_, used));
    case Kind::all:
      return c.take(used);
    case Kind::exactly: {
      if (used >= n_) return c.take(n_);
      Bytes partial = c.take(used);
      throw IncompleteReadError(std::move(partial), n_);
    }
    case Kind::until:
    case Kind::line: {
      const std::byte* base = c.buffer();
      const void* hit =
          used >= sep_len_ ? ::memmem(base + search_from_, used - search_from_, separator(), sep_len_) : nullptr;
      if (hit) {
        std::size_t at = static_cast<std::size_t>(static_cast<const std::byte*>(hit) - base);
        if (at <= c.limit_) return c.take(at + sep_len_);
        // readline drops the over-long line, as asyncio's does; readuntil leaves it for the caller.
        if (kind_ == Kind::line) c.discard(at + sep_len_);
        throw LimitOverrunError("Separator is found, but chunk is longer than limit", at);
      }
      if (c.eof_) {
        Bytes partial = c.take(used);
        if (kind_ == Kind::line) return partial;
        throw IncompleteReadError(std::move(partial), std::nullopt);
      }
      if (kind_ == Kind::line) c.discard(used);
      throw LimitOverrunError("Separator is not found, and chunk exceed the limit", used);
    }
  }
  return {};
}

void StreamRead::describe(std::ostream& os) const {
  switch (kind_) {
    case Kind::some:
      os << "StreamReader.read(" << n_ << ")";
      break;
    case Kind::all:
      os << "StreamReader.read() until EOF";
      break;
    case Kind::exactly:
      os << "StreamReader.readexactly(" << n_ << ")";
      break;
    case Kind::until:
      os << "StreamReader.readuntil(" << sep_len_ << "-byte separator)";
      break;
    case Kind::line:
      os << "StreamReader.readline()";
      break;
  }
  if (conn_) os << ", " << conn_->buffered() << " bytes buffered";
}

// --- drain() / wait_closed()

StreamWait::StreamWait(detail::StreamReaderProtocol* conn, Kind kind) noexcept
    : kind_(kind), link_(conn ? end_link(conn) : Link{}) {
  if (conn) conn->retain();
}

detail::StreamReaderProtocol* StreamWait::conn() const noexcept {
  Link l = link_;
  if (!l) return nullptr;
  while (!l.test(conn_tag)) l = l.ptr<const StreamWait>()->link_;
  return l.ptr<detail::StreamReaderProtocol>();
}

StreamWait::~StreamWait() {
  detail::StreamReaderProtocol* c = conn();
  if (!c) return;
  if (linked_) c->remove_waiter(this);
  c->release();
}

bool StreamWait::await_ready() {
  const detail::StreamReaderProtocol* c = conn();
  if (!c) throw std::logic_error("StreamWriter: empty (moved-from) writer");
  // drain() on a closing writer (close(), abort) waits for the end of the connection and raises there (asyncio:
  // ConnectionResetError), so a write-drain loop notices the close.
  if (kind_ == Kind::drain) {
    return c->lost_ || c->exc_ || (!c->write_paused_ && !(c->transport_ && c->transport_->is_closing()));
  }
  return c->lost_ || !c->attached_;
}

bool StreamWait::await_suspend(std::coroutine_handle<> h) {
  if (!park(h)) return false;
  conn()->add_waiter(this);
  linked_ = true;
  return true;
}

void StreamWait::wake() noexcept {
  linked_ = false;
  Suspension::wake();
}

Suspension::Cancel StreamWait::on_cancel() noexcept {
  conn()->remove_waiter(this);
  linked_ = false;
  return Cancel::detached;
}

void StreamWait::await_resume() {
  check_cancelled();
  const detail::StreamReaderProtocol& c = *conn();
  if (c.exc_) std::rethrow_exception(c.exc_);
  if (kind_ == Kind::drain && c.lost_) throw std::system_error(ECONNRESET, std::generic_category(), "Connection lost");
}

void StreamWait::describe(std::ostream& os) const {
  os << (kind_ == Kind::drain ? "StreamWriter.drain()" : "StreamWriter.wait_closed()");
}

}  // namespace detail
}  // namespace tulipa
