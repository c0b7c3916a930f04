#include "line_server.hpp"

#include <string>
#include <system_error>

#include "core/line_framer.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/tls_streams.hpp"

namespace chat {
namespace {

// Lives in the connection's coroutine frame: kept to the writer and the grace (the loop is the running one).
class LineClient final : public Client {
 public:
  LineClient(tulipa::StreamWriter writer, tulipa::Duration grace) : writer_(std::move(writer)), grace_(grace) {}

  WireFormat format() const noexcept override { return WireFormat::line; }
  void write(std::string_view batch) override { writer_.write(batch); }
  std::size_t write_buffer_size() const noexcept override {
    tulipa::Transport* t = writer_.transport();
    return t ? t->get_write_buffer_size() : 0;
  }
  void close() override { close_with_grace(tulipa::get_running_loop(), writer_, grace_); }

 private:
  tulipa::StreamWriter writer_;
  tulipa::Duration grace_;
};

std::string_view as_text(const tulipa::Bytes& b) {
  auto s = b.span();
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

}  // namespace

void close_with_grace(tulipa::EventLoop& loop, tulipa::StreamWriter writer, tulipa::Duration grace) {
  if (writer.is_closing()) return;
  writer.close();
  if (!writer.transport()) return;
  // The timer's copy of the writer keeps the stream state alive until it fires; transport() is null by then if
  // the connection ended by itself.
  loop.call_later(grace, [writer] {
    if (tulipa::Transport* t = writer.transport()) t->abort();
  });
}

namespace {

// The hub's welcome, or its refusal (then null, the connection closing): a plain function, so that the address and
// the refusal live on the stack, not in the connection's coroutine frame.
Session* open_session(tulipa::EventLoop& loop, Hub& hub, Client& client, tulipa::StreamWriter& writer) {
  std::string ip = writer.peername().host();
  if (std::optional<std::string> refused = hub.admit(ip)) {
    writer.write("! " + *refused + "\n");
    close_with_grace(loop, writer, hub.limits().close_grace);
    return nullptr;
  }
  return &hub.connect(client, std::move(ip));
}

// Hands the lines the framer holds to the hub, pausing for the flood gate and for fairness. A coroutine of its own,
// awaited after each read: its frame (the line, the pause's awaiter) exists only while a read's lines are handled,
// so the connection's frame, which an idle client keeps, holds none of it. `handled` counts the lines handled since
// the last pause, across reads: a read that finds data already buffered does not yield to the loop.
tulipa::Coro<void> handle_lines(Hub& hub, Session& s, LineFramer& framer, unsigned& handled) {
  while (!s.closing()) {
    LineFramer::Next next = framer.next();
    if (next.kind == LineFramer::Next::Kind::none) break;
    if (next.kind == LineFramer::Next::Kind::too_long) {
      hub.line_too_long(s);
      continue;
    }
    tulipa::Duration wait = hub.pace(s, next.text.size());
    if (s.closing()) break;
    // After lines_per_pass lines, the other clients' turn (a pause of zero) before the next one.
    if (wait > tulipa::Duration::zero() || handled == hub.limits().lines_per_pass) {
      handled = 0;
      // next.text points into the framer, which is not fed while this coroutine runs: it survives the pause.
      co_await tulipa::sleep(wait);
    }
    hub.receive(s, next.text);
    ++handled;
  }
}

// Feeds what a read returned (nothing: EOF) to the framer: a plain function, so that the view of the bytes is no
// local of the connection's frame.
void feed(LineFramer& framer, const tulipa::Bytes& data) {
  if (data.empty()) {
    framer.finish();  // a last line without a newline still counts
  } else {
    framer.feed(as_text(data));
  }
}

}  // namespace

// This frame is what an idle connection keeps while it waits for its next read (chat_tcp_test measures it: 240
// bytes with g++ 12; 416 before handle_lines took the per-line work out of it, 688 before that): the parameters, the
// client, the session, the framer, one read's awaiter and the call of handle_lines. No local lives across an await that
// another one already gives (the loop is the running one, the session one pointer), and the address and the reason of a
// failure are never held across one.
tulipa::Coro<void> serve_line_client(Hub& hub, tulipa::StreamReader reader, tulipa::StreamWriter writer) {
  LineClient client(writer, hub.limits().close_grace);
  // Not `Session* const`: g++ 12 left a const local of this coroutine unset in its frame after the first
  // suspension (UBSan and ASan saw the framer's garbage in every chat test).
  Session* s = open_session(tulipa::get_running_loop(), hub, client, writer);
  if (!s) co_return;
  LineFramer framer(hub.limits().max_line);
  unsigned handled = 0;
  bool failed = false;
  try {
    while (!framer.finished() && !s->closing()) {
      {
        tulipa::Bytes data = co_await reader.read(4096);
        feed(framer, data);
      }  // the chunk goes back now, not after the lines were handled
      co_await handle_lines(hub, *s, framer, handled);
    }
  } catch (const std::system_error& e) {
    failed = true;
    bool kicked = s->closing();
    hub.disconnect(*s, e.code() == std::errc::connection_reset ? "connection reset" : e.what());
    if (!kicked) close_with_grace(tulipa::get_running_loop(), writer, hub.limits().close_grace);
  }
  if (failed) co_return;
  bool kicked = s->closing();
  hub.disconnect(*s);
  if (!kicked) close_with_grace(tulipa::get_running_loop(), writer, hub.limits().close_grace);
}

tulipa::Server start_line_server(tulipa::EventLoop& loop, Hub& hub, std::string_view host, std::uint16_t port,
                                 const tulipa::SslContext* tls, bool reuse_port) {
  auto serve = [&hub](tulipa::StreamReader r, tulipa::StreamWriter w) {
    return serve_line_client(hub, std::move(r), std::move(w));
  };
  // Reads come in chunks of at most 4 KiB (above); the stream's own limit only bounds its buffer.
  tulipa::StreamServerOptions options;
  options.server.reuse_port = reuse_port;
  if (tls) return tulipa::start_server(loop, serve, host, port, *tls, options);
  return tulipa::start_server(loop, serve, host, port, options);
}

}  // namespace chat
