// Streams: StreamReader's reads on fed data, limits and EOF; open_connection/start_server over loopback TCP
// (IPv4 and IPv6) and Unix sockets; flow control both ways; half-close; 64 MiB intact; errors; cancellation of
// every stream operation while it waits.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "support/stream_echo.hpp"
#include "tulipa/bytes.hpp"
#include "tulipa/dns.hpp"
#include "tulipa/future.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/task.hpp"

using namespace tulipa;
using test::echo_lines;
using namespace std::chrono_literals;

namespace {

std::uint16_t port_of(const Server& server) { return server.sockets().at(0).port(); }

// Stops listening and runs the loop until the server's last connection ended (its handler saw EOF and returned),
// so that nothing outlives the test's loop.
void close_and_wait(EventLoop& loop, Server& server) {
  server.close();
  Future<void> closed(loop);
  server.wait_closed([closed]() mutable { closed.set_result(); });
  run_until_complete(loop, closed);
}

// Lets the loop run a few passes (a coroutine yielding), for states that follow from callbacks already scheduled.
Coro<void> passes(int n) {
  for (int i = 0; i < n; ++i) co_await sleep(0s);
}

template <class T>
T run(EventLoop& loop, Coro<T> c) {
  return run_until_complete(loop, std::move(c));
}

// Runs a task's first step (where it suspends), cancels it, and returns how it ended.
template <class T>
bool cancelled_while_waiting(EventLoop& loop, Task<T> task) {
  loop.run_once();
  EXPECT_FALSE(task.done()) << "the operation did not wait";
  task.cancel("test");
  try {
    run_until_complete(loop, Future<T>(task));
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "test");
    return true;
  }
  return false;
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& ch : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    ch = static_cast<char>(x);
  }
  return s;
}

}  // namespace

// ------------------------------------------------------------------------------------------------- fed reader

TEST(StreamReader, ReadlineReaduntilReadexactlyAndEof) {
  EventLoop loop;
  StreamReader r;
  r.feed_data("hello\nworld\r\nabcdefgh");
  r.feed_eof();
  run(loop, [](StreamReader r) -> Coro<void> {
    EXPECT_EQ(co_await r.readline(), "hello\n");
    EXPECT_EQ(co_await r.readuntil("\r\n"), "world\r\n");
    EXPECT_EQ(co_await r.readexactly(3), "abc");
    EXPECT_EQ(co_await r.read(2), "de");
    EXPECT_FALSE(r.at_eof());
    EXPECT_EQ(co_await r.read(), "fgh");
    EXPECT_TRUE(r.at_eof());
    EXPECT_EQ(co_await r.read(10), "");
    EXPECT_EQ(co_await r.readline(), "");
    EXPECT_EQ(co_await r.read(0), "");
  }(r));
}

TEST(StreamReader, ReadWaitsForDataFedLater) {
  EventLoop loop;
  StreamReader r;
  auto reader = create_task(loop, [](StreamReader r) -> Coro<std::string> {
    std::string got;
    got += (co_await r.readline()).str();
    got += (co_await r.readexactly(4)).str();
    got += "|" + (co_await r.read()).str();
    co_return got;
  }(r));
  auto feeder = create_task(loop, [](StreamReader r) -> Coro<void> {
    for (const char* piece : {"li", "ne", "\n12", "34rest", " of it"}) {
      co_await sleep(0s);
      r.feed_data(piece);
    }
    co_await sleep(0s);
    r.feed_eof();
  }(r));
  EXPECT_EQ(run_until_complete(loop, Future<std::string>(reader)), "line\n1234|rest of it");
  run_until_complete(loop, Future<void>(feeder));
}

TEST(StreamReader, SeparatorSplitAcrossFeeds) {
  EventLoop loop;
  StreamReader r;
  auto t =
      create_task(loop, [](StreamReader r) -> Coro<std::string> { co_return (co_await r.readuntil("END")).str(); }(r));
  run(loop, passes(1));
  r.feed_data("abcE");
  run(loop, passes(1));
  r.feed_data("N");
  run(loop, passes(1));
  EXPECT_FALSE(t.done());
  r.feed_data("Dxyz");
  EXPECT_EQ(run_until_complete(loop, Future<std::string>(t)), "abcEND");
  EXPECT_EQ(r.buffered(), 3u);
}

TEST(StreamReader, ReaduntilLimitOverrunKeepsTheData) {
  EventLoop loop;
  StreamReader r(8);
  r.feed_data("0123456789ab");  // 12 bytes, no separator, limit 8
  run(loop, [](StreamReader r) -> Coro<void> {
    try {
      (void)co_await r.readuntil("\n");
      ADD_FAILURE() << "no LimitOverrunError";
    } catch (const LimitOverrunError& e) {
      EXPECT_EQ(e.consumed(), 12u);
    }
    EXPECT_EQ(r.buffered(), 12u);
    EXPECT_EQ(co_await r.read(100), "0123456789ab");
  }(r));
}

TEST(StreamReader, LimitOverrunWhenTheSeparatorComesTooLate) {
  EventLoop loop;
  StreamReader r(4);
  r.feed_data("abcdefg\nnext\n");
  run(loop, [](StreamReader r) -> Coro<void> {
    try {
      (void)co_await r.readuntil("\n");
      ADD_FAILURE() << "no LimitOverrunError";
    } catch (const LimitOverrunError& e) {
      EXPECT_EQ(e.consumed(), 7u);  // where the separator starts
    }
    // readline drops the over-long line and goes on with the next.
    try {
      (void)co_await r.readline();
      ADD_FAILURE() << "no LimitOverrunError";
    } catch (const LimitOverrunError&) {
    }
    EXPECT_EQ(co_await r.readline(), "next\n");
  }(r));
}

TEST(StreamReader, LimitOverrunWhileWaiting) {
  EventLoop loop;
  StreamReader r(16);
  auto t = create_task(loop, [](StreamReader r) -> Coro<std::size_t> {
    try {
      (void)co_await r.readline();
    } catch (const LimitOverrunError& e) {
      co_return e.consumed();
    }
    co_return 0;
  }(r));
  run(loop, passes(1));
  r.feed_data(std::string(10, 'x'));
  run(loop, passes(1));
  EXPECT_FALSE(t.done());
  r.feed_data(std::string(10, 'y'));
  EXPECT_EQ(run_until_complete(loop, Future<std::size_t>(t)), 20u);
  EXPECT_EQ(r.buffered(), 0u);  // readline discarded the line
}

TEST(StreamReader, IncompleteRead) {
  EventLoop loop;
  StreamReader r;
  r.feed_data("abc");
  r.feed_eof();
  run(loop, [](StreamReader r) -> Coro<void> {
    try {
      (void)co_await r.readexactly(5);
      ADD_FAILURE() << "no IncompleteReadError";
    } catch (const IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), "abc");
      EXPECT_EQ(e.expected(), 5u);
    }
    EXPECT_TRUE(r.at_eof());
  }(r));
  StreamReader r2;
  r2.feed_data("no separator");
  auto t = create_task(loop, [](StreamReader r) -> Coro<void> {
    try {
      (void)co_await r.readuntil("\n");
      ADD_FAILURE() << "no IncompleteReadError";
    } catch (const IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), "no separator");
      EXPECT_FALSE(e.expected().has_value());
    }
  }(r2));
  loop.run_once();
  r2.feed_eof();
  run_until_complete(loop, Future<void>(t));
}

TEST(StreamReader, ErrorsReachTheReader) {
  EventLoop loop;
  StreamReader r;
  auto t = create_task(loop, [](StreamReader r) -> Coro<void> { (void)co_await r.read(10); }(r));
  loop.run_once();
  r.set_exception(std::make_exception_ptr(std::system_error(ECONNRESET, std::generic_category(), "read")));
  EXPECT_THROW(run_until_complete(loop, Future<void>(t)), std::system_error);
  run(loop, [](StreamReader r) -> Coro<void> {
    EXPECT_THROW((void)co_await r.readline(), std::system_error);
    EXPECT_THROW((void)co_await r.readuntil(""), std::invalid_argument);
  }(r));
}

TEST(StreamReader, OneReadAtATime) {
  EventLoop loop;
  StreamReader r;
  auto first = create_task(loop, [](StreamReader r) -> Coro<void> { (void)co_await r.read(1); }(r));
  auto second = create_task(loop, [](StreamReader r) -> Coro<void> { (void)co_await r.read(1); }(r));
  loop.run_once();
  EXPECT_THROW(run_until_complete(loop, Future<void>(second)), std::logic_error);
  r.feed_data("x");
  run_until_complete(loop, Future<void>(first));
}

TEST(StreamReader, BufferIsAbsentWhenEmptyAndReadsTakeTheChunk) {
  EventLoop loop;
  StreamReader r;
  r.feed_data(std::string(1000, 'a'));
  run(loop, [](StreamReader r) -> Coro<void> {
    Bytes all = co_await r.read(5000);
    EXPECT_EQ(all.size(), 1000u);
    EXPECT_EQ(r.buffered(), 0u);
  }(r));
  detail::trim_chunk_cache();
  const std::size_t cached = detail::chunk_cache_bytes();
  EXPECT_EQ(cached, 0u);
}

// --------------------------------------------------------------------------------------- cancellation (fed)

TEST(StreamCancel, EveryReadKeepsTheDataForTheNextRead) {
  EventLoop loop;
  StreamReader r;
  EXPECT_TRUE(cancelled_while_waiting(
      loop, create_task(loop, [](StreamReader r) -> Coro<void> { (void)co_await r.read(10); }(r))));
  r.feed_data("partial line");
  EXPECT_TRUE(cancelled_while_waiting(
      loop, create_task(loop, [](StreamReader r) -> Coro<void> { (void)co_await r.readline(); }(r))));
  EXPECT_TRUE(cancelled_while_waiting(
      loop, create_task(loop, [](StreamReader r) -> Coro<void> { (void)co_await r.readuntil("#"); }(r))));
  EXPECT_TRUE(cancelled_while_waiting(
      loop, create_task(loop, [](StreamReader r) -> Coro<void> { (void)co_await r.readexactly(100); }(r))));
  EXPECT_TRUE(cancelled_while_waiting(
      loop, create_task(loop, [](StreamReader r) -> Coro<void> { (void)co_await r.read(); }(r))));
  r.feed_data("\n");
  run(loop, [](StreamReader r) -> Coro<void> { EXPECT_EQ(co_await r.readline(), "partial line\n"); }(r));
}

// ------------------------------------------------------------------------------------------ over sockets

namespace {

Coro<std::string> talk(EventLoop& loop, std::string host, std::uint16_t port) {
  auto [reader, writer] = co_await open_connection(loop, host, port);
  writer.write("one\ntwo\n");
  std::string got = (co_await reader.readline()).str();
  got += (co_await reader.readline()).str();
  writer.write_eof();
  got += "[" + (co_await reader.read()).str() + "]";
  EXPECT_TRUE(reader.at_eof());
  writer.close();
  co_await writer.wait_closed();
  co_return got;
}

}  // namespace

TEST(Streams, OpenConnectionToStartServerIPv4) {
  EventLoop loop;
  Server server = start_server(loop, echo_lines, "127.0.0.1", 0);
  EXPECT_EQ(run(loop, talk(loop, "127.0.0.1", port_of(server))), "one\ntwo\n[]");
  close_and_wait(loop, server);
}

TEST(Streams, OpenConnectionToStartServerIPv6) {
  EventLoop loop;
  Server server;
  try {
    server = start_server(loop, echo_lines, "::1", 0);
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "no IPv6 loopback: " << e.what();
  }
  EXPECT_EQ(run(loop, talk(loop, "::1", port_of(server))), "one\ntwo\n[]");
  close_and_wait(loop, server);
}

TEST(Streams, UnixSockets) {
  EventLoop loop;
  std::string path = "/tmp/tulipa-streams-test-" + std::to_string(::getpid()) + ".sock";
  Server server = start_unix_server(loop, echo_lines, path);
  run(loop, [](EventLoop& loop, std::string path) -> Coro<void> {
    auto [reader, writer] = co_await open_unix_connection(loop, path);
    writer.write("over unix\n");
    EXPECT_EQ(co_await reader.readline(), "over unix\n");
  }(loop, path));
  close_and_wait(loop, server);
}

TEST(Streams, ConnectionRefused) {
  EventLoop loop;
  // A port nobody listens on: bind one, then close it.
  std::uint16_t port;
  {
    Server s = start_server(loop, echo_lines, "127.0.0.1", 0);
    port = port_of(s);
  }
  run(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    try {
      (void)co_await open_connection(loop, "127.0.0.1", port);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED);
    }
    EXPECT_THROW((void)co_await open_connection(loop, "no.such.host.invalid", 1), GaiError);  // the lookup failed
  }(loop, port));
}

TEST(Streams, HalfCloseServerAnswersAfterEof) {
  EventLoop loop;
  // The server reads everything until the client's EOF, then answers with the size and closes.
  Server server = start_server(
      loop,
      [](StreamReader reader, StreamWriter writer) -> Coro<void> {
        Bytes all = co_await reader.read();
        EXPECT_TRUE(reader.at_eof());
        writer.write("got " + std::to_string(all.size()));
        co_await writer.drain();
        writer.close();
      },
      "127.0.0.1", 0);
  std::string reply = run(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<std::string> {
    auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port);
    EXPECT_TRUE(writer.can_write_eof());
    const std::string half(50000, 'z');
    const std::span<const std::byte> pieces[] = {std::as_bytes(std::span(half)), std::as_bytes(std::span(half))};
    writer.writelines(pieces);
    writer.write_eof();
    EXPECT_THROW(writer.write("late"), std::logic_error);
    co_return (co_await reader.read()).str();
  }(loop, port_of(server)));
  EXPECT_EQ(reply, "got 100000");
  close_and_wait(loop, server);
}

constexpr std::size_t total = 64u << 20;

TEST(Streams, SixtyFourMebibytesIntact) {
  EventLoop loop;
  const std::string data = pattern(1 << 20, 7);
  // The server echoes in chunks of whatever arrives; the client writes 64 MiB and reads it all back concurrently.
  Server server = start_server(
      loop,
      [](StreamReader reader, StreamWriter writer) -> Coro<void> {
        for (;;) {
          Bytes b = co_await reader.read(65536);
          if (b.empty()) break;
          writer.write(b);
          co_await writer.drain();
        }
        writer.close();
      },
      "127.0.0.1", 0);
  std::size_t mismatches =
      run(loop, [](EventLoop& loop, std::uint16_t port, const std::string& data) -> Coro<std::size_t> {
        auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port);
        auto sender = create_task(loop, [](StreamWriter w, const std::string& data) -> Coro<void> {
          for (std::size_t sent = 0; sent < total; sent += data.size()) {
            w.write(data);
            co_await w.drain();
          }
          w.write_eof();
        }(writer, data));
        std::size_t got = 0, bad = 0;
        while (got < total) {
          // Alternate the read styles: readexactly across the pattern's seams, and read(n).
          // (Not with ?: — g++ 12 mishandles co_await in both arms of a conditional.)
          Bytes b;
          if ((got / 65536) % 2) {
            b = co_await reader.readexactly(std::min<std::size_t>(100000, total - got));
          } else {
            b = co_await reader.read(70000);
          }
          if (b.empty()) break;
          for (std::size_t i = 0; i < b.size(); ++i)
            if (b.data()[i] != static_cast<std::byte>(data[(got + i) % data.size()])) ++bad;
          got += b.size();
        }
        EXPECT_EQ(got, total);
        EXPECT_TRUE((co_await reader.read()).empty());
        co_await sender;
        co_return bad;
      }(loop, port_of(server), data));
  EXPECT_EQ(mismatches, 0u);
  close_and_wait(loop, server);
}

TEST(Streams, DrainWaitsForASlowReader) {
  EventLoop loop;
  Future<void> go(loop);
  Server server = start_server(
      loop,
      [&go](StreamReader reader, StreamWriter writer) -> Coro<void> {
        co_await go;  // do not read until the client's buffer is full
        Bytes all = co_await reader.read();
        writer.write(std::to_string(all.size()));
        writer.close();
      },
      "127.0.0.1", 0);
  run(loop, [](EventLoop& loop, std::uint16_t port, Future<void> go) -> Coro<void> {
    auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port);
    writer.transport()->set_write_buffer_limits(64 * 1024);
    const std::string block(1 << 20, 'd');
    for (int i = 0; i < 16; ++i) writer.write(block);
    // The kernel cannot hold 16 MiB unread: the transport buffers, above its high-water mark.
    EXPECT_GT(writer.transport()->get_write_buffer_size(), 64u * 1024);
    go.set_result();
    co_await writer.drain();  // waits for the reader to catch up
    EXPECT_LE(writer.transport()->get_write_buffer_size(), 16u * 1024);
    writer.write_eof();
    EXPECT_EQ(co_await reader.read(), std::to_string(16 << 20));
  }(loop, port_of(server), go));
  close_and_wait(loop, server);
}

TEST(Streams, ReaderPausesTheTransportAboveTwiceTheLimit) {
  EventLoop loop;
  Future<StreamPair> accepted(loop);
  StreamServerOptions options;
  options.limit = 4096;
  Server server = start_server(
      loop,
      [&accepted](StreamReader reader, StreamWriter writer) -> Coro<void> {
        accepted.set_result(StreamPair{reader, writer});
        co_await writer.wait_closed();
      },
      "127.0.0.1", 0, options);
  run(loop, [](EventLoop& loop, std::uint16_t port, Future<StreamPair> accepted) -> Coro<void> {
    auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port);
    StreamPair far_end = co_await accepted;
    StreamReader& far = far_end.reader;
    writer.write(std::string(1 << 20, 'p'));
    // Let the far side read until its buffer passes 2 * limit; then it must stop reading.
    while (far.buffered() <= 2 * far.limit()) co_await sleep(0s);
    std::size_t held = far.buffered();
    co_await passes(20);
    EXPECT_EQ(far.buffered(), held) << "kept reading while above the limit";
    EXPECT_LE(held, 2 * far.limit() + 65536);  // one read may bring up to 64 KiB
    // Reading below the limit resumes the transport: everything arrives.
    std::size_t got = 0;
    while (got < (1u << 20)) got += (co_await far.read(1 << 20)).size();
    EXPECT_EQ(got, 1u << 20);
    writer.close();
    EXPECT_TRUE((co_await far.read()).empty());
    far_end.writer.close();
  }(loop, port_of(server), accepted));
  close_and_wait(loop, server);
}

TEST(Streams, ResetReachesTheReaderAndDrain) {
  EventLoop loop;
  Server server = start_server(
      loop,
      [](StreamReader reader, StreamWriter writer) -> Coro<void> {
        (void)co_await reader.readline();
        // Abortive close: SO_LINGER 0 makes close() send RST.
        struct linger lg{1, 0};
        ::setsockopt(writer.transport()->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        writer.transport()->abort();
      },
      "127.0.0.1", 0);
  run(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port);
    writer.write("bye\n");
    try {
      (void)co_await reader.read();
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNRESET);
    }
    EXPECT_EQ(writer.transport(), nullptr);
    EXPECT_THROW(co_await writer.drain(), std::system_error);
    EXPECT_THROW(co_await writer.wait_closed(), std::system_error);
    writer.write("dropped");  // after the connection is lost: dropped, no error
  }(loop, port_of(server)));
  close_and_wait(loop, server);
}

TEST(Streams, DroppingTheHandlesClosesTheConnection) {
  EventLoop loop;
  // The server's coroutine returns at once without closing: its handles go, so the connection closes.
  Server server = start_server(loop, [](StreamReader, StreamWriter) -> Coro<void> { co_return; }, "127.0.0.1", 0);
  run(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port);
    EXPECT_TRUE((co_await reader.read()).empty());
    EXPECT_TRUE(reader.at_eof());
  }(loop, port_of(server)));
  close_and_wait(loop, server);
}

// ------------------------------------------------------------------------------------ cancellation (sockets)

// A connection whose writer is blocked: the server's handler waits for `go`, then reads everything and answers
// with how many bytes it got; the client's transport holds more than its 1 KiB high-water mark (the kernel's
// buffers are full), so drain() waits until `go` is set.
struct BlockedWriter {
  Server server;
  StreamReader reader;
  StreamWriter writer;
  std::size_t written = 0;  // what the client wrote
};
BlockedWriter blocked_writer(EventLoop& loop, Future<void>& go, char fill) {
  Server server = start_server(
      loop,
      [&go](StreamReader reader, StreamWriter writer) -> Coro<void> {
        co_await go;
        // After whatever the test did meanwhile the stream still works: all the client's data arrives.
        Bytes all = co_await reader.read();
        writer.write(std::to_string(all.size()));
        writer.close();
      },
      "127.0.0.1", 0);
  auto [reader, writer] = run(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<StreamPair> {
    co_return co_await open_connection(loop, "127.0.0.1", port);
  }(loop, port_of(server)));
  writer.transport()->set_write_buffer_limits(1024);
  const std::string block(1 << 20, fill);
  std::size_t written = 0;
  // Far more than the kernel's socket buffers can still take in by growing (TCP autotuning), so that drain() keeps
  // waiting whatever the timing.
  for (int i = 0; i < 32 && writer.transport()->get_write_buffer_size() <= 8 * block.size(); ++i) {
    writer.write(block);
    written += block.size();
    // A pass that does not sleep: a completion transport (io_uring) hands its queue to the kernel here, as a
    // readiness transport's write() did already.
    loop.call_soon([] {});
    loop.run_once();
  }
  EXPECT_GT(writer.transport()->get_write_buffer_size(), 1024u);
  return BlockedWriter{std::move(server), std::move(reader), std::move(writer), written};
}

TEST(StreamCancel, DrainWaitClosedAndReadsOnAConnection) {
  EventLoop loop;
  Future<void> done(loop);
  auto [server, reader, writer, written] = blocked_writer(loop, done, 'x');
  ASSERT_GT(writer.transport()->get_write_buffer_size(), 1024u);
  EXPECT_TRUE(cancelled_while_waiting(
      loop, create_task(loop, [](StreamWriter w) -> Coro<void> { co_await w.drain(); }(writer))));
  EXPECT_TRUE(cancelled_while_waiting(
      loop, create_task(loop, [](StreamWriter w) -> Coro<void> { co_await w.wait_closed(); }(writer))));
  EXPECT_TRUE(cancelled_while_waiting(
      loop, create_task(loop, [](StreamReader r) -> Coro<void> { (void)co_await r.readline(); }(reader))));
  EXPECT_TRUE(cancelled_while_waiting(
      loop, create_task(loop, [](StreamReader r) -> Coro<void> { (void)co_await r.readexactly(10); }(reader))));
  done.set_result();
  run(loop, [](StreamReader r, StreamWriter w, std::size_t written) -> Coro<void> {
    co_await w.drain();
    w.write_eof();
    EXPECT_EQ(co_await r.read(), std::to_string(written));
    w.close();
    co_await w.wait_closed();
  }(reader, writer, written));
  close_and_wait(loop, server);
}

TEST(StreamCancel, OpenConnectionClosesTheLateConnection) {
  EventLoop loop;
  Future<bool> saw_eof(loop);
  Server server = start_server(
      loop,
      [&saw_eof](StreamReader reader, StreamWriter) -> Coro<void> {
        Bytes rest = co_await reader.read();
        saw_eof.set_result(rest.empty() && reader.at_eof());
      },
      "127.0.0.1", 0);
  EXPECT_TRUE(cancelled_while_waiting(loop, create_task(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
                                        (void)co_await open_connection(loop, "127.0.0.1", port);
                                      }(loop, port_of(server)))));
  // The connection comes up after the cancellation; nobody wants it, so it is closed: the server sees EOF.
  EXPECT_TRUE(run_until_complete(loop, saw_eof));
  close_and_wait(loop, server);
}

TEST(Streams, AHandlerThatThrowsIsReportedAndItsConnectionClosed) {
  EventLoop loop;
  std::vector<std::string> reports;
  loop.set_exception_handler([&reports](EventLoop&, const ErrorContext& ctx) {
    reports.push_back(ctx.message + ": " + describe_exception(ctx.exception));
  });
  Server server = start_server(
      loop,
      [](StreamReader reader, StreamWriter) -> Coro<void> {
        Bytes line = co_await reader.readline();
        throw std::runtime_error("handler failed on " + line.str());
      },
      "127.0.0.1", 0);
  run(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port);
    writer.write("boom\n");
    // The handler's handles went with its frame: the connection is closed, the client sees EOF.
    EXPECT_TRUE((co_await reader.read()).empty());
  }(loop, port_of(server)));
  close_and_wait(loop, server);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("handler failed on boom"), std::string::npos) << reports[0];
}

TEST(Streams, BadArgumentsFailEarly) {
  EventLoop loop;
  EXPECT_THROW(start_server(loop, nullptr, "127.0.0.1", 0), std::invalid_argument);
  StreamServerOptions zero;
  zero.limit = 0;
  EXPECT_THROW(start_server(loop, echo_lines, "127.0.0.1", 0, zero), std::invalid_argument);
  EXPECT_THROW(StreamReader(0), std::invalid_argument);
  StreamReader moved;
  StreamReader taker = std::move(moved);
  run(loop, [](StreamReader empty) -> Coro<void> {
    EXPECT_THROW((void)co_await empty.read(1), std::logic_error);
  }(std::move(moved)));
}

// drain() and wait_closed() waiters share one list per connection, whose last link is the connection itself
// (StreamWait keeps a single word for both): several of each, one cancelled in the middle, wake in order and only
// for what they wait for.
TEST(StreamCancel, ManyWaitersOnOneWriterWakeInOrder) {
  EventLoop loop;
  Future<void> go(loop);
  auto [server, reader, writer, written] = blocked_writer(loop, go, 'w');
  ASSERT_GT(writer.transport()->get_write_buffer_size(), 1024u);

  std::vector<int> woke;
  auto drainer = [](StreamWriter w, std::vector<int>& woke, int id) -> Coro<void> {
    co_await w.drain();
    woke.push_back(id);
  };
  auto closer = [](StreamWriter w, std::vector<int>& woke, int id) -> Coro<void> {
    co_await w.wait_closed();
    woke.push_back(id);
  };
  Task<void> d1 = create_task(loop, drainer(writer, woke, 1));
  Task<void> c1 = create_task(loop, closer(writer, woke, 10));
  Task<void> d2 = create_task(loop, drainer(writer, woke, 2));
  Task<void> d3 = create_task(loop, drainer(writer, woke, 3));
  Task<void> c2 = create_task(loop, closer(writer, woke, 20));
  loop.run_once();
  EXPECT_TRUE(woke.empty());
  d2.cancel("test");
  go.set_result();
  run_until_complete(loop, Future<void>(d3));
  EXPECT_EQ(woke, (std::vector<int>{1, 3}));
  EXPECT_TRUE(d2.cancelled());
  EXPECT_FALSE(c1.done());
  EXPECT_FALSE(c2.done());
  writer.write_eof();
  EXPECT_EQ(run(loop, [](StreamReader r) -> Coro<Bytes> { co_return co_await r.read(); }(reader)),
            std::to_string(written));
  writer.close();
  run_until_complete(loop, Future<void>(c2));
  EXPECT_EQ(woke, (std::vector<int>{1, 3, 10, 20}));
  close_and_wait(loop, server);
}

// The per-connection budget: a handler shaped like the echo benchmark's (read, write, drain in a loop) keeps its
// awaitables and its Bytes in a frame of at most 176 bytes (a frame allocator class: 16-byte steps; the request
// objects, the 32-byte awaiters, the 16-byte Bytes and the 16-byte promise are what keeps it there). An idle
// streams connection's budget (512 bytes, issue 5) has about 30 bytes to spare: a bigger frame eats them.
namespace {
// A function, not a lambda: a lambda coroutine's frame would also hold its closure's address.
Coro<void> echo_chunks(StreamReader reader, StreamWriter writer) {
  for (;;) {
    Bytes data = co_await reader.read(65536);
    if (data.empty()) break;
    writer.write(data);
    co_await writer.drain();
  }
  writer.close();
}
}  // namespace

TEST(Streams, AnEchoHandlersFrameFitsItsBudget) {
  EventLoop loop;
  std::size_t frame = 0;
  Server server = start_server(
      loop,
      [&frame](StreamReader r, StreamWriter w) {
        Coro<void> c = echo_chunks(std::move(r), std::move(w));
        frame = detail::last_frame_size();
        return c;
      },
      "127.0.0.1", 0);
  run(loop, [](EventLoop& loop, std::uint16_t port) -> Coro<void> {
    auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port);
    writer.write("ping");
    EXPECT_EQ(co_await reader.readexactly(4), "ping");
    writer.close();
  }(loop, port_of(server)));
  close_and_wait(loop, server);
  EXPECT_GT(frame, 0u);
  EXPECT_LE(frame, 176u);
}
