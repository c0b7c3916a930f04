// Internals of streams.hpp: the awaitables StreamReader's reads and StreamWriter's drain()/wait_closed() return.
// `co_await` them once, right away; their sizes are per-connection memory (they sit in the awaiting frame).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <span>
#include <utility>

#include "tulipa/bytes.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/detail/tagged_ptr.hpp"

namespace tulipa::detail {

class StreamReaderProtocol;

// The leaf awaiter of every read: read(n), read(), readexactly(n), readline(). readuntil()'s is StreamReadUntil
// (below), which adds the borrowed separator.
//
// Size: these objects sit in the awaiting coroutine's frame (twice with g++ 12: docs/coroutines.md), once per
// co_await site, so they are kept to 32 bytes: Suspension leaves 7 bytes of padding after its fields, and
// kind_, sep_len_ and the count go there.
class [[nodiscard]] StreamRead : public Suspension {
 public:
  enum class Kind : std::uint8_t { some, all, exactly, until, line };
  // Any kind but `until` (StreamReadUntil's). `n`: read(n)'s and readexactly(n)'s count.
  StreamRead(detail::StreamReaderProtocol* conn, Kind kind, std::uint32_t n) noexcept;
  // Movable before it suspends (coro.hpp's rule 5).
  StreamRead(StreamRead&& o) noexcept
      : Suspension(), kind_(o.kind_), sep_len_(o.sep_len_), n_(o.n_), conn_(std::exchange(o.conn_, nullptr)) {}
  ~StreamRead();

  bool await_ready();
  bool await_suspend(std::coroutine_handle<> h);
  Bytes await_resume();
  void describe(std::ostream& os) const final;

  // For the stream state: can this read complete (or fail) with what is buffered now?
  bool satisfied();
  // Called by the stream state when satisfied() became true: leave the waiter slot busy until resumption, wake.
  using Suspension::wake;
  Kind kind() const noexcept { return kind_; }
  // read(n)/readexactly(n): n.
  std::size_t wanted() const noexcept { return n_; }

  // The separator of readuntil is at most this long (std::invalid_argument beyond).
  static constexpr std::size_t max_separator = UINT16_MAX;

 protected:
  // StreamReadUntil's: sep_len is 0 when the separator is empty or longer than max_separator (await_ready throws).
  StreamRead(detail::StreamReaderProtocol* conn, std::uint16_t sep_len) noexcept;

 private:
  Cancel on_cancel() noexcept final;
  bool is_until() const noexcept { return kind_ == Kind::until || kind_ == Kind::line; }
  // readuntil's separator (this is then a StreamReadUntil), or readline's "\n".
  const std::byte* separator() const noexcept;

  Kind kind_;
  std::uint16_t sep_len_ = 0;  // readuntil/readline
  union {
    std::uint32_t n_;            // read(n), readexactly(n): reads are capped to the 4 GiB a reader's buffer holds
    std::uint32_t search_from_;  // readuntil/readline: where the separator search resumes (before: searched)
  };
  detail::StreamReaderProtocol* conn_;
};

// readuntil()'s awaiter: a StreamRead that also holds the separator, borrowed: it must outlive the co_await (a
// literal or a temporary in the same expression does).
class [[nodiscard]] StreamReadUntil final : public StreamRead {
 public:
  StreamReadUntil(detail::StreamReaderProtocol* conn, std::span<const std::byte> sep) noexcept
      : StreamRead(conn, sep.size() <= max_separator ? static_cast<std::uint16_t>(sep.size()) : 0), sep_(sep.data()) {}
  // NOLINTNEXTLINE(bugprone-use-after-move): StreamRead's move leaves sep_, a member of ours, alone
  StreamReadUntil(StreamReadUntil&& o) noexcept : StreamRead(std::move(o)), sep_(o.sep_) {}

 private:
  friend class StreamRead;
  const std::byte* sep_;
};

// drain() and wait_closed().
class [[nodiscard]] StreamWait final : public Suspension {
 public:
  enum class Kind : std::uint8_t { drain, closed };
  StreamWait(detail::StreamReaderProtocol* conn, Kind kind) noexcept;
  StreamWait(StreamWait&& o) noexcept : Suspension(), kind_(o.kind_), link_(std::exchange(o.link_, {})) {}

  ~StreamWait();

  bool await_ready();
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume();
  void describe(std::ostream& os) const override;

  // For the stream state's list of waiters (see link_).
  // The stream state took it off its list: marks it unlinked, then wakes it (hides Suspension::wake).
  void wake() noexcept;
  Kind kind() const noexcept { return kind_; }
  // The next waiter in the connection's list; null for the last one (and for one that is not in the list).
  StreamWait* next_waiter() const noexcept { return link_.test(conn_tag) ? nullptr : link_.ptr<StreamWait>(); }
  void set_next_waiter(StreamWait* next, detail::StreamReaderProtocol* conn) noexcept {
    link_ = next ? Link(next, 0) : end_link(conn);
  }

 private:
  Cancel on_cancel() noexcept override;
  detail::StreamReaderProtocol* conn() const noexcept;
  using Link = TaggedPtr<1>;
  static constexpr Link::Tag conn_tag = 1;
  // (A StreamReaderProtocol is 8-aligned: stream_read.cpp checks it where the type is complete.)
  static Link end_link(detail::StreamReaderProtocol* conn) noexcept { return Link::from_aligned(conn, conn_tag); }

  // In the awaiting coroutine's frame, like StreamRead, and 32 bytes: the two flags fill Suspension's padding,
  // and one word is both the connection and the list link. The connection's waiters form a singly linked list
  // whose last link is the connection itself, tagged; a waiter not in the list holds that tagged pointer. So the
  // connection is found by following the links to the tagged one (a writer rarely has more than one waiter):
  //   bit 0 | pointer                  | when
  //   0     | the next StreamWait      | in the connection's list, not its last
  //   1     | the StreamReaderProtocol | the last in the list, or not in the list
  //   0     | null                     | moved from
  Kind kind_;
  bool linked_ = false;
  Link link_;
};

// What read(), readexactly(), readline(), drain() and wait_closed() return: a small request (16 and 8 bytes) that
// becomes its awaiter (above) only inside the co_await. Why: g++ 12 keeps a co_await's operand in the coroutine
// frame (docs/coroutines.md, "g++ 12"), so a small operand instead of the 32-byte awaiter keeps a connection handler's
// frame small (a frame is per-connection memory). Await it once, right away.
class [[nodiscard]] StreamReadRequest {
 public:
  StreamRead operator co_await() const noexcept { return StreamRead(conn_, kind_, n_); }
  StreamReadRequest(detail::StreamReaderProtocol* conn, StreamRead::Kind kind, std::uint32_t n) noexcept
      : conn_(conn), n_(n), kind_(kind) {}

 private:
  detail::StreamReaderProtocol* conn_;
  std::uint32_t n_;  // reads are capped to the 4 GiB a reader's buffer can hold
  StreamRead::Kind kind_;
};

class [[nodiscard]] StreamWaitRequest {
 public:
  StreamWait operator co_await() const noexcept {
    return StreamWait(bits_.ptr<detail::StreamReaderProtocol>(), static_cast<StreamWait::Kind>(bits_.tag()));
  }

  // One word: the kind rides in bit 0 of the connection's address (8-aligned, as StreamWait's link):
  //   bit 0 | pointer
  //   0     | the StreamReaderProtocol, for drain()
  //   1     | the StreamReaderProtocol, for wait_closed()
  StreamWaitRequest(detail::StreamReaderProtocol* conn, StreamWait::Kind kind) noexcept
      : bits_(TaggedPtr<1>::from_aligned(conn, static_cast<TaggedPtr<1>::Tag>(kind))) {}

 private:
  TaggedPtr<1> bits_;
};

}  // namespace tulipa::detail
