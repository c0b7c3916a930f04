// What a Process, its PipeReaders/PipeWriter and its protocol (ProcessProtocol, process.cpp) share. Held by
// shared_ptr: the protocol (owned by the transport, gone after connection_lost) and the user's Process (gone
// whenever the user drops it) each keep it alive, and so does every coroutine of theirs while it runs.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tulipa/bytes.hpp"
#include "tulipa/future.hpp"
#include "tulipa/subprocess.hpp"

namespace tulipa::detail {

// The buffer of one output pipe (stdout or stderr) and the reader waiting on it (asyncio's StreamReader core).
struct PipeReaderCore {
  static constexpr std::size_t limit = 64 * 1024;  // asyncio's default stream limit

  explicit PipeReaderCore(EventLoop& l) noexcept : loop(&l) {}

  std::size_t size() const noexcept { return buf.size() - pos; }
  std::span<const std::byte> data() const noexcept {
    return std::as_bytes(std::span(buf.data() + pos, buf.size() - pos));
  }
  // Called by the protocol.
  void feed(std::span<const std::byte> d);
  void feed_eof();
  void set_error(std::exception_ptr e);
  // Called by readers.
  Future<void> wait();      // a future completed by the next feed/EOF/error; std::logic_error if one is waiting
  Bytes take(std::size_t n);  // the first n buffered bytes (n <= size()); resumes reading below the limit
  void drop_all() noexcept;
  void set_unbounded();     // communicate(): never pause the pipe again
  // read(-1) in progress: it takes everything anyway, so the pipe is not paused meanwhile (asyncio's read(-1)
  // consumes as it goes, to the same effect). RAII, so a cancelled read restores flow control.
  struct ReadingAll {
    PipeReaderCore& c;
    explicit ReadingAll(PipeReaderCore& core);
    ~ReadingAll() { --c.reading_all; }
  };

  EventLoop* loop;
  ReadTransport* transport = nullptr;  // null once the pipe is lost
  std::string buf;                     // bytes [pos, size) are unread
  std::size_t pos = 0;
  std::exception_ptr error;
  bool eof = false;        // EOF or error: no more data comes
  bool paused = false;     // we paused the pipe transport
  bool unbounded = false;
  int reading_all = 0;
  Future<void> waiter{nullptr};

 private:
  void wake() noexcept;
};

struct ProcessState {
  explicit ProcessState(EventLoop& l) noexcept : loop(&l) {}

  EventLoop* loop;
  SubprocessTransport* transport = nullptr;  // null after connection_lost (the transport is gone)
  int pid = -1;
  std::optional<int> returncode;  // set by process_exited
  std::vector<Future<int>> exit_waiters;
  std::shared_ptr<PipeReaderCore> out, err;

  // stdin
  bool has_stdin = false;
  WriteTransport* in = nullptr;  // null once the stdin pipe is lost
  bool in_lost = false;
  bool in_closed = false;  // the user closed it (writes then throw)
  std::exception_ptr in_error;
  bool write_paused = false;
  std::vector<Future<void>> drain_waiters;
  std::vector<Future<void>> closed_waiters;

  // Completes and clears a list of waiters (cancelled ones are skipped).
  static void wake_all(std::vector<Future<void>>& waiters) noexcept;
};

}  // namespace tulipa::detail
