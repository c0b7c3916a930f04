// Private to the HTTP server: the state a Server and its connections share, and the connection protocol.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tulipa/handle.hpp"
#include "tulipa/http/framing.hpp"
#include "tulipa/http/server.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/protocol.hpp"
#include "tulipa/task.hpp"
#include "tulipa/transport.hpp"

namespace tulipa::http::detail {

class Connection;

// Bytes a connection keeps between reads (a partial request, or read-ahead while a coroutine handler runs).
// 16 bytes and no allocation while empty; the memory goes back as soon as it empties, so an idle keep-alive
// connection holds none.
class ByteBuffer {
 public:
  ByteBuffer() noexcept = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ~ByteBuffer() { std::free(data_); }

  std::string_view view() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  void append(std::string_view s);
  // Drops the first n bytes; frees the memory when nothing is left.
  void consume(std::size_t n) noexcept;
  void clear() noexcept { consume(size_); }

 private:
  char* data_ = nullptr;
  std::uint32_t size_ = 0;
  std::uint32_t capacity_ = 0;
};

// "Date: Thu, 03 Dec 2026 09:53:01 GMT\r\n", formatted at most once per second.
class DateField {
 public:
  std::string_view get() noexcept;

 private:
  std::int64_t second_ = -1;
  char text_[48] = {};
  std::size_t size_ = 0;
};

struct ServerState {
  ServerState(EventLoop& l, Router r, ServerConfig c);
  ~ServerState();

  EventLoop& loop;
  Router router;
  ServerConfig config;
  tulipa::Server listener;
  DateField date;
  Duration sweep_period;

  // Every connection still served (intrusive, unordered).
  Connection* first = nullptr;
  std::size_t connections = 0;
  std::size_t refs = 0;  // the Server handle, each connection, each factory copy, each coroutine handler
  TimerHandle sweep_timer;
  bool sweep_armed = false;

  // Graceful shutdown.
  bool shutting_down = false;
  Future<void> shutdown_done{nullptr};
  TimerHandle grace_timer;

  void ref() noexcept { ++refs; }
  void unref() noexcept {
    if (--refs == 0) delete this;
  }

  void add(Connection& c) noexcept;
  void remove(Connection& c) noexcept;
  void sweep();
  void arm_sweep();
  void begin_shutdown(Duration grace);
  void abort_all() noexcept;
  std::unique_ptr<StreamProtocol> make_connection(bool encrypted = false);
  // One line through the loop's log handler.
  void log(Transport* t, int status, std::string_view what) noexcept;
};

// A counted reference to the ServerState, for the protocol factory's captures.
class StateRef {
 public:
  explicit StateRef(ServerState* s) noexcept : s_(s) { s_->ref(); }
  StateRef(const StateRef& o) noexcept : s_(o.s_) { s_->ref(); }
  StateRef& operator=(const StateRef&) = delete;
  ~StateRef() { s_->unref(); }
  ServerState* operator->() const noexcept { return s_; }
  ServerState& operator*() const noexcept { return *s_; }

 private:
  ServerState* s_;
};

// A coroutine handler in flight: the request copied out of the read buffer, owned by the handler's task.
struct Exchange {
  explicit Exchange(ServerState* s) noexcept : state(s), reader(*this) {}
  StateRef state;
  Connection* conn = nullptr;  // null once the connection went away
  const Router::Route* route = nullptr;
  std::string bytes;  // the request head (and a Content-Length body)
  std::string chunked_body;
  std::vector<Header> headers;
  Request request;
  bool head_request = false;
  Task<void> task{nullptr};

  // A request body streamed to the handler (Route::stream): the connection feeds it, BodyReader::read takes it.
  struct Body {
    BodyKind kind = BodyKind::none;
    std::uint64_t left = 0;  // Content-Length bytes still to come
    ChunkedDecoder decoder;
    std::string buffered;  // decoded bytes not taken yet; the first `handed` were handed out by the last read
    std::size_t handed = 0;
    std::uint64_t received = 0;
    bool open = false;  // more body bytes to come from the socket (then the connection's buffer is empty)
    std::exception_ptr error;
    Future<void> waiter{nullptr};  // a read() waiting for bytes
    void wake() {
      if (waiter) std::exchange(waiter, Future<void>(nullptr)).try_set_result();
    }
  } body;
  BodyReader reader;
};

// A streamed response body in progress (Response::set_stream_body): the producer runs as a task of its own, which
// owns this.
struct ResponseStream final : BodyWriter {
  ResponseStream(ServerState* s, Connection* c, BodyProducer p, bool chunked_, bool keep_alive_) noexcept
      : state(s), conn(c), producer(std::move(p)), chunked(chunked_), keep_alive(keep_alive_) {}
  Coro<void> write(std::string_view data) override;

  StateRef state;
  Connection* conn;  // null once the connection went away
  BodyProducer producer;
  bool chunked;  // HTTP/1.1: chunks; HTTP/1.0: the bytes as they are, ended by closing the connection
  bool keep_alive;
  Future<void> drained{nullptr};  // a write() waiting for resume_writing
  Task<void> task{nullptr};
};

class Connection final : public Protocol {
  // between: a request was just completed, the next phase is not known yet.
  enum class Phase : std::uint8_t { idle, head, body, handler, between, closing, handed_over };
  // What occupies the connection (see set_job below).
  enum class Job : std::uint8_t { none, exchange, stream, file, upload };

  // The small members first: they fill the padding after StreamProtocol's flag (80 bytes in all, not 88).
  Phase phase_ = Phase::idle;
  Job job_kind_ = Job::none;
  bool active_ : 1 = false;  // bytes arrived since the last sweep
  bool writing_paused_ : 1 = false;
  bool reading_paused_ : 1 = false;
  bool continue_sent_ : 1 = false;
  bool encrypted_ : 1 = false;
  std::uint32_t body_bytes_ = 0;  // body bytes received since the last sweep (the minimum rate)

 public:
  // `encrypted`: the transport encrypts (TLS), so file bodies are never sent with sendfile on its socket.
  Connection(ServerState& s, bool encrypted) noexcept : encrypted_(encrypted), s_(&s) { s_->ref(); }
  ~Connection() override;
  // From a per-thread pool (net/pool.hpp): an idle connection costs its 80 bytes, where malloc's header and size
  // classes would make it 96. Freed on the thread that made it, as its transport is.
  static void* operator new(std::size_t size);
  static void operator delete(void* p) noexcept;

  void connection_made(Transport& t) override;
  void data_received(std::span<const std::byte> data) override;
  void connection_lost(std::exception_ptr exc) override;
  void pause_writing() override;
  void resume_writing() override;

  // Called by the sweep: closes the connection if its deadline passed.
  void check_deadline(TimePoint now);
  // Graceful shutdown: idle connections close now, busy ones after their response.
  void shut_down();
  void abort() noexcept;
  // The coroutine handler finished (or failed: `error` set, `response` empty).
  void finish_exchange(Exchange& ex, Response& response, std::exception_ptr error);
  // The streaming handler took what the last read handed out: reading may resume.
  void body_consumed();
  // A piece of a streamed response (a chunk when `chunked`), and whether the writer must wait for resume_writing.
  void send_piece(std::string_view data, bool chunked);
  bool writing_paused() const noexcept { return writing_paused_; }
  // The producer of a streamed response returned (or failed: `error` set).
  void finish_stream(ResponseStream& rs, std::exception_ptr error);

  Connection* prev = nullptr;
  Connection* next = nullptr;

 private:
  std::size_t process(std::string_view in);
  void after_processing();
  // Writes the response for `req` into the output; false when the connection must stop (close, upgrade).
  bool respond(Request& req, Response& resp, bool head_request, std::string_view leftover);
  void error_response(int status, std::string_view reason, std::string_view log_reason = {});

  // A request head parsed, checked and routed; its views point into the bytes it was parsed from.
  struct Head {
    RequestHead head;
    Framing framing;
    Request req;
    Router::Match match;
    std::size_t size = 0;  // bytes of the head
    bool head_request = false;
  };
  enum class HeadStatus : std::uint8_t { ok, incomplete, refused };
  // Parses the request head at the start of `rest`; refused: answered with its error (the connection closes).
  HeadStatus parse_head(std::string_view rest, Head& h);
  // Answers a complete request (or starts its coroutine handler): `bytes` are what its views point into (the head,
  // and a Content-Length body), `body` its body; `owned_body`, when not null, holds the body and may be moved from.
  // `leftover`: the bytes after the request (for an upgrade). False when the connection stops (close, upgrade).
  bool serve(Head& h, std::string_view bytes, std::string_view body, std::string* owned_body,
             std::string_view leftover);
  // The head is accepted, its body is on its way: 100-continue if the client waits for it, and the body's deadline.
  void await_body(const Head& h);
  // Decodes what `src` holds of a chunked body into `out`; returns the bytes of `src` used. A body over max_body
  // (413) or malformed (400) is answered at once and the connection closes.
  std::size_t decode_chunks(ChunkedDecoder& dec, std::string_view src, std::string& out);
  void start_exchange(std::string_view bytes, const Router::Route& route, Request& req, bool head_request, bool chunked,
                      std::string* owned_body);
  // Starts a streaming handler after its request's head (`head_size` bytes at `pos` of `in`), and feeds it the body
  // bytes that follow; returns how many of those it took.
  std::size_t start_stream_exchange(std::string_view in, std::size_t pos, std::size_t head_size,
                                    const Router::Route& route, Request& req, bool head_request, const Framing& f);
  // Feeds body bytes to the streaming handler; returns how many belonged to the body (the rest is read-ahead).
  std::size_t feed_body(std::string_view in);
  void refuse_body(int status, std::string_view reason);
  // Carries on with the requests buffered meanwhile, once the connection is free again.
  void continue_buffered();
  // Pauses or resumes reading from the socket after what is held for this connection.
  void update_reading();
  void hand_over(std::unique_ptr<StreamProtocol> protocol, std::string_view leftover);
  void set_phase(Phase p, TimePoint now);
  // Sends the file body in progress: sendfile while the transport's buffer is empty, else through the transport
  // (which pauses us above its high-water mark). Then carries on with the next request.
  void pump_file();
  void finish_file(bool ok);

  // A file body being sent (a response's, moved here).
  struct FileSend {
    int fd;
    std::uint64_t offset;
    std::uint64_t remaining;
    bool keep_alive;
    ~FileSend();
  };
  // A chunked request body for a buffered handler arriving over several reads: the head's bytes (parsed again once
  // the body is complete), the body decoded so far and the decoder's state, so that each read decodes only its own
  // bytes (and the body size limit is checked as they come).
  struct ChunkedUpload {
    std::string head;
    std::string body;
    ChunkedDecoder decoder;
  };

  // What occupies the connection until its response is done, at most one at a time (so one slot: an idle
  // keep-alive connection's bytes are budgeted): a coroutine handler (owned by its task), a streamed response (owned
  // by its task) or a file body being sent (owned here); while one is set (busy), the requests after it wait in
  // buf_. Or, before its request is served, the chunked body being received for it (owned here; not busy).
  Exchange* exchange() const noexcept { return job_kind_ == Job::exchange ? job_.exchange : nullptr; }
  ResponseStream* stream() const noexcept { return job_kind_ == Job::stream ? job_.stream : nullptr; }
  FileSend* file() const noexcept { return job_kind_ == Job::file ? job_.file : nullptr; }
  ChunkedUpload* upload() const noexcept { return job_kind_ == Job::upload ? job_.upload : nullptr; }
  bool busy() const noexcept { return job_kind_ != Job::none && job_kind_ != Job::upload; }
  void set_job(Exchange* ex) noexcept { job_.exchange = ex, job_kind_ = Job::exchange; }
  void set_job(ResponseStream* rs) noexcept { job_.stream = rs, job_kind_ = Job::stream; }
  void set_job(FileSend* f) noexcept { job_.file = f, job_kind_ = Job::file; }
  void set_job(ChunkedUpload* u) noexcept { job_.upload = u, job_kind_ = Job::upload; }
  void clear_job() noexcept { job_.exchange = nullptr, job_kind_ = Job::none; }

  ServerState* s_;
  Transport* t_ = nullptr;
  ByteBuffer buf_;
  union {
    Exchange* exchange;
    ResponseStream* stream;
    FileSend* file;
    ChunkedUpload* upload;
  } job_{nullptr};
  TimePoint deadline_{};
};

}  // namespace tulipa::http::detail
