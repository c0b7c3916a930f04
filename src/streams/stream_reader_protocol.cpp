// The shared reader/writer state and its protocol side (see stream_reader_protocol.hpp).
#include "streams/stream_reader_protocol.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "net/pool.hpp"
#include "tulipa/detail/bytes_access.hpp"
#include "tulipa/detail/frame_alloc.hpp"
#include "tulipa/task.hpp"
#include "tulipa/transport.hpp"

namespace tulipa::detail {

namespace {
// 8-byte blocks: the object needs no more, and 16 would round its 72 bytes up to 80.
using ConnectionPool = FixedPool<sizeof(StreamReaderProtocol), 64 * 1024, alignof(StreamReaderProtocol)>;
static_assert(alignof(StreamReaderProtocol) <= 8 && sizeof(StreamReaderProtocol) <= 72, "per-connection budget");

constexpr std::size_t max_buffer = Bytes::max_size;  // offsets are 32-bit to keep the per-connection state small
// Below this much free tail, a read would be a small syscall for little data: make room first.
constexpr std::size_t min_read_room = 4096;
// A chunk this large that is at most 1/8 full while nobody reads it is replaced by a right-sized one, so data
// waiting for a busy coroutine does not pin a 64 KiB chunk.
constexpr std::size_t shrink_above = 4096;
}  // namespace

void StreamReaderProtocol::check_limit(std::size_t limit) {
  if (limit == 0 || limit > max_buffer / 4) throw std::invalid_argument("streams: limit must be in 1..1 GiB");
}

StreamReaderProtocol* StreamReaderProtocol::create(std::size_t limit, bool for_transport) {
  check_limit(limit);
  // Placement: the constructor cannot throw, so no deallocation function is needed for it (the class's operator
  // delete is the destroying one, which a new-expression could not use).
  void* block = for_transport ? ConnectionPool::local().allocate() : ::operator new(sizeof(StreamReaderProtocol));
  auto* c = ::new (block) StreamReaderProtocol(limit);
  c->attached_ = for_transport;
  c->pooled_ = for_transport;
  return c;
}

StreamReaderProtocol* StreamReaderProtocol::create_for_server(std::size_t limit,
                                                              const ClientConnected* client_connected) {
  StreamReaderProtocol* c = create(limit, true);
  c->on_connect_ = client_connected;
  c->starting_ = true;
  return c;
}

StreamReaderProtocol::StreamReaderProtocol(std::size_t limit) noexcept : limit_(static_cast<std::uint32_t>(limit)) {}

StreamReaderProtocol::~StreamReaderProtocol() { chunk_free(release_chunk()); }

void StreamReaderProtocol::destroy() noexcept {
  bool pooled = pooled_;
  this->~StreamReaderProtocol();
  if (pooled) {
    ConnectionPool::local().deallocate(this);
  } else {
    heap_free(this, sizeof(StreamReaderProtocol));  // detail/frame_alloc.hpp: sized where the compiler can
  }
}

void StreamReaderProtocol::operator delete(StreamReaderProtocol* p, std::destroying_delete_t) noexcept {
  p->attached_ = false;
  p->transport_ = nullptr;
  if (p->refs_ == 0) p->destroy();
}

void StreamReaderProtocol::release() noexcept {
  if (--refs_ != 0) return;
  if (attached_) {
    // Nobody can read or write this connection any more: close it (the transport flushes what is buffered, then
    // connection_lost and its delete end this object).
    if (transport_ && !transport_->is_closing()) transport_->close();
    return;
  }
  destroy();
}

// --- protocol

void StreamReaderProtocol::connection_made(Transport& transport) {
  const ClientConnected* cb = starting_ ? on_connect_ : nullptr;
  starting_ = false;
  transport_ = &transport;
  if (cb) {
    refs_ += 2;  // the two handles adopted below (released by their destructors if the call throws)
    create_task(transport.get_loop(), (*cb)(detail::StreamAccess::reader(this), detail::StreamAccess::writer(this)));
  }
}

void StreamReaderProtocol::connection_lost(std::exception_ptr exc) {
  lost_ = true;
  transport_ = nullptr;
  reading_paused_ = false;
  write_paused_ = false;
  if (exc) {
    set_exception(std::move(exc));
  } else {
    feed_eof();
  }
  while (StreamWait* w = waiters_) {
    remove_waiter(w);
    w->wake();
  }
}

bool StreamReaderProtocol::eof_received() {
  feed_eof();
  return true;  // half-close: the writer may still write; the user (or the last handle going) closes
}

std::span<std::byte> StreamReaderProtocol::get_buffer(std::size_t size_hint) {
  std::size_t hint = std::max<std::size_t>(size_hint, 256);
  if (!buf_) {
    // A fresh chunk is sized by what this connection's reads brought lately (read_shift_): a protocol of 1 KiB
    // messages reads into 2 KiB chunks (little memory in flight, a small cache footprint), a bulk transfer
    // doubles it up to the transport's hint.
    std::size_t want = std::min(hint, std::size_t{1} << read_shift_);
    if (reader_) {
      // Sized for the pending read: read(n) gets a chunk of about n that it then takes whole; readexactly(n)
      // gets all n in one chunk.
      if (reader_->kind() == StreamRead::Kind::some) want = std::min(want, std::max<std::size_t>(reader_->wanted(), 1));
      if (reader_->kind() == StreamRead::Kind::exactly) want = std::max<std::size_t>(reader_->wanted(), 256);
    }
    set_chunk(chunk_alloc(std::min(want, max_buffer)));
    begin_ = end_ = 0;
  } else {
    std::size_t want = std::min<std::size_t>(min_read_room, cap_ / 2);
    if (reader_ && reader_->kind() == StreamRead::Kind::exactly && reader_->wanted() > buffered())
      want = std::max(want, reader_->wanted() - buffered());
    if (cap_ - end_ < want) reserve_tail(want);
  }
  return {buf_ + end_, cap_ - end_};
}

void StreamReaderProtocol::buffer_updated(std::size_t nbytes) {
  // Learn the next chunk size: double it when the read filled the room it had (the socket may hold more), else
  // fit it to this read (the smallest power of two above it).
  std::size_t room = cap_ - end_;
  int shift = nbytes >= room ? read_shift_ + 1 : std::bit_width(nbytes);
  read_shift_ = static_cast<std::uint8_t>(std::clamp(shift, 8, 16));
  end_ += static_cast<std::uint32_t>(nbytes);
  data_arrived();
}

void StreamReaderProtocol::resume_writing() {
  write_paused_ = false;
  for (StreamWait* w = waiters_; w;) {
    StreamWait* next = w->next_waiter();
    if (w->kind() == StreamWait::Kind::drain) {
      remove_waiter(w);
      w->wake();
    }
    w = next;
  }
}

// --- the buffer

void StreamReaderProtocol::reserve_tail(std::size_t room) {
  std::size_t used = buffered();
  if (buf_ && cap_ - end_ >= room) return;
  if (used + room > max_buffer) throw std::length_error("streams: a reader's buffer cannot exceed 4 GiB");
  if (buf_ && used + room <= cap_) {
    std::memmove(buf_, buf_ + begin_, used);
  } else {
    std::size_t cap = std::min(std::max(std::size_t{cap_} * 2, used + room), max_buffer);
    Chunk bigger = chunk_alloc(cap);
    if (used) std::memcpy(bigger.data, buf_ + begin_, used);
    chunk_free(release_chunk());
    set_chunk(bigger);
  }
  begin_ = 0;
  end_ = static_cast<std::uint32_t>(used);
}

void StreamReaderProtocol::feed(std::span<const std::byte> data) {
  if (eof_) throw std::logic_error("StreamReader: feed_data() after feed_eof()");
  if (data.empty()) return;
  reserve_tail(data.size());
  std::memcpy(buf_ + end_, data.data(), data.size());
  end_ += static_cast<std::uint32_t>(data.size());
  data_arrived();
}

void StreamReaderProtocol::data_arrived() {
  bool starving = false;  // a read waits and needs more than is buffered
  if (reader_) {
    if (reader_->satisfied()) {
      reader_->wake();
    } else {
      starving = true;
    }
  }
  // asyncio's flow control: stop reading from the socket above twice the limit, unless a read needs more.
  if (transport_ && !reading_paused_ && !starving && buffered() > 2 * std::size_t{limit_}) {
    reading_paused_ = true;
    transport_->pause_reading();
  }
  if (!reader_ && cap_ > shrink_above && buffered() * 8 <= cap_) {
    Chunk small = chunk_alloc(buffered());
    std::memcpy(small.data, buf_ + begin_, buffered());
    end_ = static_cast<std::uint32_t>(buffered());
    begin_ = 0;
    chunk_free(release_chunk());
    set_chunk(small);
  }
}

void StreamReaderProtocol::feed_eof() {
  eof_ = true;
  wake_reader();
}

void StreamReaderProtocol::set_exception(std::exception_ptr e) {
  exc_ = std::move(e);
  wake_reader();
}

void StreamReaderProtocol::wake_reader() noexcept {
  if (reader_ && reader_->satisfied()) reader_->wake();
}

Bytes StreamReaderProtocol::take(std::size_t n) {
  std::size_t used = buffered();
  if (n == 0) return {};
  Bytes out;
  if (n == used) {
    out = detail::BytesAccess::adopt(release_chunk(), begin_, n);
    begin_ = end_ = 0;
  } else if (used - n < n) {
    // Copy the smaller part: the rest moves to a new chunk, the read keeps the chunk.
    Chunk rest = chunk_alloc(used - n);
    std::memcpy(rest.data, buf_ + begin_ + n, used - n);
    out = detail::BytesAccess::adopt(release_chunk(), begin_, n);
    set_chunk(rest);
    begin_ = 0;
    end_ = static_cast<std::uint32_t>(used - n);
  } else {
    out = Bytes(std::span<const std::byte>(buf_ + begin_, n));
    discard(n);
    return out;
  }
  discard(0);
  return out;
}

void StreamReaderProtocol::discard(std::size_t n) noexcept {
  begin_ += static_cast<std::uint32_t>(n);
  if (begin_ == end_) {
    chunk_free(release_chunk());  // an empty reader holds no buffer
    begin_ = end_ = 0;
  }
  if (reading_paused_ && transport_ && buffered() <= limit_) {
    reading_paused_ = false;
    transport_->resume_reading();
  }
}

void StreamReaderProtocol::register_read(StreamRead* r) {
  reader_ = r;
  // A read that waits needs data: take the brake off (asyncio's _wait_for_data does the same).
  if (reading_paused_ && transport_) {
    reading_paused_ = false;
    transport_->resume_reading();
  }
}

// --- waiters

void StreamReaderProtocol::add_waiter(StreamWait* w) noexcept {
  // Appended, so that waiters wake in the order they came (as asyncio's deque of futures). The last one's link
  // is this connection (see StreamWait::link_).
  w->set_next_waiter(nullptr, this);
  if (!waiters_) {
    waiters_ = w;
    return;
  }
  StreamWait* last = waiters_;
  while (StreamWait* n = last->next_waiter()) last = n;
  last->set_next_waiter(w, this);
}

void StreamReaderProtocol::remove_waiter(StreamWait* w) noexcept {
  if (waiters_ == w) {
    waiters_ = w->next_waiter();
  } else {
    for (StreamWait* p = waiters_; p; p = p->next_waiter()) {
      if (p->next_waiter() == w) {
        p->set_next_waiter(w->next_waiter(), this);
        break;
      }
    }
  }
  w->set_next_waiter(nullptr, this);
}

}  // namespace tulipa::detail
