// StreamReaderProtocol: the state a StreamReader and its StreamWriter share, and the protocol that feeds it from the
// transport (asyncio's StreamReaderProtocol and StreamReader's buffer in one object, to keep a connection small).
//
// Ownership: the transport owns its protocol and deletes it after connection_lost; the user holds reader and
// writer handles that may outlive the transport. So the transport's delete does not destroy this object: a
// destroying operator delete (C++20) only records that the transport let go, and the object is destroyed once
// both the transport and the last handle (refs_) are gone. When the last handle goes while the transport still
// runs, the connection is closed (see streams.hpp).
//
// Threads: a connection's object is a block of its loop thread's FixedPool, and a block must go back to the pool
// it came from. Its last reference drops in one of: the transport's delete (the loop's thread), the last
// reader/writer handle's destructor, or an awaiter's (in a coroutine frame of one of the loop's tasks). Handles
// and awaiters are loop-thread objects already (refs_ is a plain counter, and the last handle closes the
// transport): a handle moved to another thread and destroyed there would be a data race before it is a pool
// problem, so streams.hpp says handles stay on the loop's thread. Readers without a transport, which have no loop,
// are heap blocks and may be moved between threads (not used from two at once).
//
// The buffer: one contiguous chunk [begin_, end_) of the thread's chunk pool, absent while empty. The transport
// reads straight into its free tail (BufferedProtocol::get_buffer), sized for the pending read when there is one,
// and a read that takes everything takes the chunk itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <span>

#include "tulipa/bytes.hpp"
#include "tulipa/protocol.hpp"
#include "tulipa/streams.hpp"

namespace tulipa::detail {

class StreamReaderProtocol final : public BufferedProtocol {
 public:
  // `for_transport`: the object is handed to a transport (which then owns a share of it). refs_ starts at 0.
  // Memory: one that is handed to a transport comes from the loop thread's pool of 72-byte blocks (per-connection
  // memory, see Threads below); a reader without transport (StreamReader(limit)) comes from the heap, as it may be
  // made and dropped on any thread (a test's main thread, a worker...).
  static StreamReaderProtocol* create(std::size_t limit, bool for_transport);
  // A server's connection: create(limit, true) that starts `client_connected(reader, writer)` as a task of the
  // transport's loop in connection_made. `client_connected` is borrowed until then (the server's factory keeps it).
  static StreamReaderProtocol* create_for_server(std::size_t limit, const ClientConnected* client_connected);
  // std::invalid_argument unless 0 < limit <= 1 GiB (the buffer's offsets are 32-bit).
  static void check_limit(std::size_t limit);
  // The transport's `delete`: see Ownership above.
  static void operator delete(StreamReaderProtocol* p, std::destroying_delete_t) noexcept;

  void retain() noexcept { ++refs_; }
  void release() noexcept;

  // --- BufferedProtocol
  void connection_made(Transport& transport) override;
  void connection_lost(std::exception_ptr exc) override;
  bool eof_received() override;
  std::span<std::byte> get_buffer(std::size_t size_hint) override;
  void buffer_updated(std::size_t nbytes) override;
  void pause_writing() override { write_paused_ = true; }
  void resume_writing() override;

  // --- the reader's buffer
  std::size_t buffered() const noexcept { return end_ - begin_; }
  const std::byte* buffer() const noexcept { return buf_ + begin_; }
  // Appends a copy of `data` (feed_data).
  void feed(std::span<const std::byte> data);
  void feed_eof();
  void set_exception(std::exception_ptr e);
  // Removes the first n (<= buffered()) bytes and returns them; hands the chunk over when that copies less.
  Bytes take(std::size_t n);
  void discard(std::size_t n) noexcept;

  // --- the pending read (one at a time, as asyncio). The slot stays taken from registration until the read
  // resumes, so another coroutine cannot consume the data a woken read was promised.
  void register_read(StreamRead* r);
  void unregister_read(StreamRead* r) noexcept {
    if (reader_ == r) reader_ = nullptr;
  }
  StreamRead* pending_read() const noexcept { return reader_; }

  // --- drain()/wait_closed() waiters
  void add_waiter(StreamWait* w) noexcept;
  void remove_waiter(StreamWait* w) noexcept;

  // State, read by the awaiters. Laid out for the per-connection budget (72 bytes with the vtable pointer): the
  // flags and the first counter fill the padding the base class leaves, offsets are 32-bit.
  bool eof_ : 1 = false;             // EOF received (or fed): no more data will come
  bool attached_ : 1 = false;        // a transport owns a share of this object
  bool lost_ : 1 = false;            // connection_lost ran
  bool reading_paused_ : 1 = false;  // we paused the transport's reading (flow control)
  bool write_paused_ : 1 = false;    // the transport's write buffer is above its high-water mark
  bool pooled_ : 1 = false;          // a block of the thread's pool (else a heap block): see create()
  bool starting_ : 1 = false;        // a server's connection before connection_made: on_connect_ is set
  // log2 of the next fresh chunk's size, learnt from the last reads (see get_buffer).
  std::uint8_t read_shift_ = 11;
  std::uint32_t refs_ = 0;  // reader/writer handles and awaiters
  std::uint32_t limit_;

 private:
  std::uint32_t begin_ = 0;  // the buffered bytes are buf_[begin_, end_)
  std::uint32_t end_ = 0;
  std::uint32_t cap_ = 0;  // the chunk's capacity

 public:
  // The transport from connection_made until connection_lost. Before connection_made a server's connection keeps
  // the callback it starts there in the same word (starting_ says which): nobody holds a handle before
  // connection_made, so nobody reads transport_ then, and a word less per connection (72 bytes, not 80).
  union {
    Transport* transport_ = nullptr;
    const ClientConnected* on_connect_;
  };
  std::exception_ptr exc_;

 private:
  explicit StreamReaderProtocol(std::size_t limit) noexcept;
  ~StreamReaderProtocol();
  void destroy() noexcept;
  // Makes room for `room` more bytes after end_ (compacting or growing the chunk).
  void reserve_tail(std::size_t room);
  // After data arrived: wake the read whose condition now holds, apply flow control, shrink an oversized chunk.
  void data_arrived();
  void wake_reader() noexcept;
  void set_chunk(Chunk c) noexcept {
    buf_ = c.data;
    cap_ = static_cast<std::uint32_t>(c.capacity);
  }
  Chunk release_chunk() noexcept {
    Chunk c{buf_, cap_};
    buf_ = nullptr;
    cap_ = 0;
    return c;
  }

  std::byte* buf_ = nullptr;  // the chunk; null while the buffer is empty
  StreamRead* reader_ = nullptr;
  StreamWait* waiters_ = nullptr;
};

// Makes reader and writer handles from a connection's state, adopting one reference the caller already took each.
struct StreamAccess {
  static StreamReader reader(StreamReaderProtocol* c) noexcept { return StreamReader(c, StreamReader::Adopt{}); }
  static StreamWriter writer(StreamReaderProtocol* c) noexcept { return StreamWriter(c, StreamWriter::Adopt{}); }
};

}  // namespace tulipa::detail
