// One HTTP/1.1 server connection (server.hpp describes the behaviour; server_state.hpp the members).
//
// The hot path: data_received gets a span of the loop's read buffer; process() parses every complete request in
// it, runs synchronous handlers on views into that span, and appends each response to a per-thread output buffer
// that leaves in one write at the end. Only what is left over (a partial request) is copied into the connection's
// buffer. A coroutine handler gets its own copy of the request (an Exchange) and stops the processing until it
// finished; the bytes after it wait in the connection's buffer.
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include "net/pool.hpp"
#include "server_state.hpp"
#include "tulipa/coro.hpp"

namespace tulipa::http::detail {

// An idle keep-alive connection is budgeted (issue 14: <= 256 bytes with its transport and the loop's share).
static_assert(sizeof(void*) != 8 || sizeof(Connection) <= 80, "http::detail::Connection outgrew its budget");
using ConnectionPool = tulipa::detail::FixedPool<sizeof(Connection)>;

void* Connection::operator new(std::size_t) { return ConnectionPool::local().allocate(); }
void Connection::operator delete(void* p) noexcept { ConnectionPool::local().deallocate(p); }

namespace {

// The answers of one pass, for every connection of this thread (flushed before each protocol method returns).
std::string& output() {
  thread_local std::string out = [] {
    std::string s;
    s.reserve(16 * 1024);
    return s;
  }();
  return out;
}

std::span<Header> header_scratch(std::size_t n) {
  thread_local std::vector<Header> headers;
  if (headers.size() < n) headers.resize(n);
  return {headers.data(), n};
}

std::string& chunk_scratch() {
  thread_local std::string body;
  return body;
}

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

bool status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

void split_target(std::string_view target, std::string_view& path, std::string_view& query) {
  std::string_view t = target;
  // absolute-form (RFC 9112 3.2.2): the path starts after the authority.
  if (t.starts_with("http://") || t.starts_with("https://")) {
    const std::size_t auth = t.find("//") + 2;
    const std::size_t slash = t.find_first_of("/?", auth);
    t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
  }
  const std::size_t q = t.find('?');
  path = t.substr(0, q);
  query = q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
  if (path.empty()) path = "/";
}

std::string_view rebase(std::string_view v, const char* from, const char* to) {
  if (v.empty()) return v;
  return {to + (v.data() - from), v.size()};
}

Coro<void> run_exchange(std::unique_ptr<Exchange> ex) {
  Response response;
  std::exception_ptr error;
  try {
    if (ex->route->stream)
      response = co_await ex->route->stream(ex->request, ex->reader);
    else
      response = co_await ex->route->async(ex->request);
  } catch (const std::exception&) {
    error = std::current_exception();
  }
  if (ex->conn) ex->conn->finish_exchange(*ex, response, error);
}

Coro<void> run_stream(std::unique_ptr<ResponseStream> rs) {
  std::exception_ptr error;
  try {
    co_await rs->producer(*rs);
  } catch (const std::exception&) {
    error = std::current_exception();
  }
  if (rs->conn) rs->conn->finish_stream(*rs, error);
}

std::exception_ptr connection_lost_error() {
  return std::make_exception_ptr(
      std::system_error(std::make_error_code(std::errc::connection_reset), "http: the connection was lost"));
}

}  // namespace

// --- the producer's side of a streamed response

Coro<void> ResponseStream::write(std::string_view data) {
  if (!conn) std::rethrow_exception(connection_lost_error());
  if (!data.empty()) conn->send_piece(data, chunked);
  while (conn && conn->writing_paused()) {
    drained = Future<void>(state->loop);
    Future<void> wait = drained;
    co_await wait;
  }
  if (!conn) std::rethrow_exception(connection_lost_error());
}

Connection::~Connection() {
  delete file();
  delete upload();
  s_->unref();
}

Connection::FileSend::~FileSend() { ::close(fd); }

void Connection::connection_made(Transport& t) {
  t_ = &t;
  s_->add(*this);
  // A connection that sends nothing must send its first head within header_timeout.
  phase_ = Phase::head;
  deadline_ = s_->loop.time() + s_->config.header_timeout;
  if (s_->shutting_down) t.close();
}

void Connection::connection_lost(std::exception_ptr) {
  delete file();
  delete upload();
  if (Exchange* ex = exchange()) {
    ex->conn = nullptr;
    if (ex->body.open && !ex->body.error) ex->body.error = connection_lost_error();
    ex->body.wake();
    if (!ex->task.done()) ex->task.cancel("http: the connection was lost");
  }
  if (ResponseStream* rs = stream()) {
    rs->conn = nullptr;
    if (!rs->task.done()) rs->task.cancel("http: the connection was lost");
  }
  clear_job();
  if (phase_ != Phase::handed_over) s_->remove(*this);
}

void Connection::pause_writing() {
  if (phase_ == Phase::handed_over) return;
  writing_paused_ = true;
  if (!reading_paused_) {
    reading_paused_ = true;
    t_->pause_reading();
  }
}

void Connection::resume_writing() {
  writing_paused_ = false;
  if (phase_ == Phase::closing || phase_ == Phase::handed_over) return;
  if (ResponseStream* rs = stream()) {
    std::exchange(rs->drained, Future<void>(nullptr)).try_set_result();
    update_reading();
    return;
  }
  if (exchange()) {
    update_reading();
    return;
  }
  if (file()) {
    pump_file();
    return;
  }
  continue_buffered();
}

void Connection::continue_buffered() {
  if (!buf_.empty()) {
    const std::size_t used = process(buf_.view());
    if (phase_ == Phase::handed_over) return;
    buf_.consume(used);
  }
  after_processing();
}

void Connection::data_received(std::span<const std::byte> data) {
  if (phase_ == Phase::handed_over) return;  // a take-over that kept this protocol in place (it closes)
  std::string_view in(reinterpret_cast<const char*>(data.data()), data.size());
  active_ = true;
  const bool streamed_body = exchange() && exchange()->body.open;
  if (phase_ == Phase::body || streamed_body)
    body_bytes_ += static_cast<std::uint32_t>(std::min<std::size_t>(in.size(), 1u << 30));
  if (streamed_body && phase_ != Phase::closing) {  // (the connection's buffer is empty while a body streams)
    in.remove_prefix(feed_body(in));
    if (in.empty() || phase_ == Phase::closing) {
      after_processing();
      return;
    }
  }
  if (busy() || writing_paused_ || phase_ == Phase::closing) {
    if (phase_ != Phase::closing) buf_.append(in);
    after_processing();
    return;
  }
  if (buf_.empty()) {
    const std::size_t used = process(in);
    if (phase_ == Phase::handed_over) return;
    if (used < in.size() && phase_ != Phase::closing) buf_.append(in.substr(used));
  } else {
    buf_.append(in);
    const std::size_t used = process(buf_.view());
    if (phase_ == Phase::handed_over) return;
    buf_.consume(used);
  }
  after_processing();
}

// Flushes the output, then sets the phase (and its deadline) and the reading state from what is left.
void Connection::after_processing() {
  std::string& out = output();
  if (!out.empty()) {
    t_->write(out);
    out.clear();
  }
  if (file() && !writing_paused_ && phase_ != Phase::closing) {
    pump_file();
    return;
  }
  if (phase_ == Phase::closing) {
    buf_.clear();
    return;
  }
  const TimePoint now = s_->loop.time();
  if (busy()) {
    set_phase(Phase::handler, now);
  } else if (buf_.empty() && !upload()) {
    set_phase(Phase::idle, now);
    if (s_->shutting_down) {
      phase_ = Phase::closing;
      t_->close();
      return;
    }
  } else if (phase_ != Phase::body) {
    set_phase(Phase::head, now);
  }
  update_reading();
}

void Connection::update_reading() {
  // Read ahead while a handler runs (or the peer does not read our answers), up to the cap; a streamed body counts.
  const std::size_t held = buf_.size() + (exchange() ? exchange()->reader.buffered() : 0);
  const bool stop = writing_paused_ || (busy() && held >= s_->config.max_read_ahead);
  if (stop != reading_paused_) {
    reading_paused_ = stop;
    if (stop)
      t_->pause_reading();
    else
      t_->resume_reading();
  }
}

void Connection::set_phase(Phase p, TimePoint now) {
  if (p == phase_) return;
  phase_ = p;
  switch (p) {
    case Phase::idle:
      deadline_ = now + s_->config.keep_alive_timeout;
      break;
    case Phase::head:
    case Phase::body:     // the body's rate is checked after a grace period as long as the head's deadline
    case Phase::handler:  // (a streamed body's, while its handler waits for it)
      deadline_ = now + s_->config.header_timeout;
      body_bytes_ = 0;
      break;
    default:
      break;
  }
}

void Connection::check_deadline(TimePoint now) {
  switch (phase_) {
    case Phase::idle:
      if (active_)
        deadline_ = now + s_->config.keep_alive_timeout;
      else if (now >= deadline_) {
        phase_ = Phase::closing;
        t_->close();
      }
      break;
    case Phase::head:
      if (now < deadline_) break;
      if (buf_.empty()) {  // nothing sent at all: closed like an idle connection, no answer
        phase_ = Phase::closing;
        t_->close();
      } else {
        error_response(408, "the request head did not arrive in time");
        after_processing();
      }
      break;
    case Phase::body:
    case Phase::handler: {
      // A streamed body is held to the rate only while its handler waits for it (a handler that does not read
      // stops the reading, which is not the peer's fault).
      if (phase_ == Phase::handler && !(exchange() && exchange()->body.open && exchange()->body.waiter)) {
        body_bytes_ = 0;
        break;
      }
      const auto period = std::chrono::duration<double>(s_->sweep_period).count();
      if (now >= deadline_ &&
          static_cast<double>(body_bytes_) < static_cast<double>(s_->config.min_body_rate) * period) {
        if (phase_ == Phase::handler) {
          refuse_body(408, "the request body arrived slower than the minimum rate");
        } else {
          error_response(408, "the request body arrived slower than the minimum rate");
          after_processing();
        }
      }
      body_bytes_ = 0;
      break;
    }
    default:
      break;
  }
  active_ = false;
}

void Connection::shut_down() {
  if (phase_ == Phase::closing) return;
  if (!busy() && buf_.empty() && !upload()) {
    phase_ = Phase::closing;
    t_->close();
  }
  // Otherwise the response in progress goes out with "Connection: close" and after_processing closes.
}

void Connection::abort() noexcept {
  phase_ = Phase::closing;
  t_->abort();
}

void Connection::error_response(int status, std::string_view reason, std::string_view log_reason) {
  s_->log(t_, status, log_reason.empty() ? reason : log_reason);
  std::string& out = output();
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::uint64_t>(status));
  out.append(" ").append(reason_phrase(status)).append("\r\n");
  out.append(s_->date.get());
  out.append("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  append_number(out, reason.size() + 1);
  out.append("\r\nConnection: close\r\n\r\n").append(reason).append("\n");
  phase_ = Phase::closing;
  t_->write(out);
  out.clear();
  t_->close();
}

std::size_t Connection::process(std::string_view in) {
  std::size_t pos = 0;
  while (pos < in.size() && !writing_paused_ && !busy()) {
    if (ChunkedUpload* up = upload()) {  // a chunked body carried on from an earlier read
      pos += decode_chunks(up->decoder, in.substr(pos), up->body);
      if (phase_ == Phase::closing) return in.size();
      if (!up->decoder.done()) break;
      const std::unique_ptr<ChunkedUpload> u(up);
      clear_job();
      Head h;
      // Parsed again: the same bytes as when the body began, complete and accepted then.
      if (parse_head(u->head, h) != HeadStatus::ok) return in.size();
      if (!serve(h, u->head, u->body, &u->body, in.substr(pos))) return in.size();
      continue;
    }
    const std::string_view rest = in.substr(pos);
    Head h;
    const HeadStatus hs = parse_head(rest, h);
    if (hs == HeadStatus::incomplete) break;
    if (hs == HeadStatus::refused) return in.size();
    const Framing& f = h.framing;
    if (h.match.route && h.match.route->stream) {  // the handler starts now and takes the body as it comes
      pos += h.size + start_stream_exchange(in, pos, h.size, *h.match.route, h.req, h.head_request, f);
      if (phase_ == Phase::closing) return in.size();
      break;
    }
    std::size_t total = h.size;
    std::string_view bytes = rest.substr(0, h.size);
    std::string_view body;
    if (f.body == BodyKind::length) {
      if (rest.size() - h.size < f.length) {
        await_body(h);
        break;
      }
      total += f.length;
      bytes = rest.substr(0, total);
      body = rest.substr(h.size, f.length);
    } else if (f.body == BodyKind::chunked) {
      std::string& decoded = chunk_scratch();
      decoded.clear();
      ChunkedDecoder dec;
      const std::size_t raw = decode_chunks(dec, rest.substr(h.size), decoded);
      if (phase_ == Phase::closing) return in.size();
      if (!dec.done()) {
        // The rest comes in later reads: keep the decoder and what it gave, not the raw bytes.
        set_job(new ChunkedUpload{std::string(bytes), decoded, dec});
        await_body(h);
        pos += h.size + raw;
        break;
      }
      total += raw;
      body = decoded;
    }
    if (!serve(h, bytes, body, nullptr, in.substr(pos + total))) return in.size();
    pos += total;
  }
  return pos;
}

Connection::HeadStatus Connection::parse_head(std::string_view rest, Head& h) {
  const ServerConfig& cfg = s_->config;
  std::span<Header> headers = header_scratch(cfg.max_headers);
  RequestHead& head = h.head;
  const ParseResult r = parse_request(rest, head, headers, cfg.head);
  if (r.incomplete()) return HeadStatus::incomplete;
  if (r.failed()) {
    error_response(status_for(r.error), describe(r.error));
    return HeadStatus::refused;
  }
  const std::span<const Header> fields = headers.first(head.header_count);
  const Framing f = request_framing(head, fields, cfg.max_body);
  if (f.error != FramingError::none) {
    error_response(status_for(f.error), describe(f.error));
    return HeadStatus::refused;
  }
  h.framing = f;
  h.size = r.consumed;
  Request& req = h.req;
  req.method_ = head.method;
  req.target_ = head.target;
  split_target(head.target, req.path_, req.query_);
  req.headers_ = fields;
  req.minor_version_ = static_cast<std::uint8_t>(head.minor_version);
  req.keep_alive_ = f.keep_alive && !s_->shutting_down;
  req.upgrade_ = f.upgrade;
  req.transport_ = t_;
  h.head_request = head.method == "HEAD";
  h.match = s_->router.find(head.method, req.path_, req);
  return HeadStatus::ok;
}

void Connection::await_body(const Head& h) {
  if (h.framing.expect_continue && !continue_sent_ && h.head.minor_version >= 1) {
    continue_sent_ = true;
    output().append("HTTP/1.1 100 Continue\r\n\r\n");
  }
  if (phase_ != Phase::body) set_phase(Phase::body, s_->loop.time());
}

std::size_t Connection::decode_chunks(ChunkedDecoder& dec, std::string_view src, std::string& out) {
  using Kind = ChunkedDecoder::Step::Kind;
  std::size_t used = 0;
  for (;;) {
    const ChunkedDecoder::Step st = dec.next(src.substr(used));
    used += st.consumed;
    if (st.kind == Kind::data) {
      if (dec.body_bytes() > s_->config.max_body) {
        error_response(413, describe(FramingError::body_too_large));
        return src.size();
      }
      out.append(st.data);
      continue;
    }
    if (st.kind == Kind::error) {
      error_response(400, "malformed chunked body");
      return src.size();
    }
    return used;  // more to come, or done
  }
}

bool Connection::serve(Head& h, std::string_view bytes, std::string_view body, std::string* owned_body,
                       std::string_view leftover) {
  continue_sent_ = false;
  phase_ = Phase::between;  // after_processing sets the next phase, with a fresh deadline
  Request& req = h.req;
  req.body_ = body;
  const Router::Match& m = h.match;
  if (!m.route) {
    Response resp(m.method_not_allowed ? 405 : 404);
    resp.set_static_body(m.method_not_allowed ? "Method Not Allowed\n" : "Not Found\n");
    if (m.method_not_allowed) resp.add_header("Allow", m.allow);
    return respond(req, resp, h.head_request, {});
  }
  if (m.route->async) {
    start_exchange(bytes, *m.route, req, h.head_request, h.framing.body == BodyKind::chunked, owned_body);
    return true;
  }
  Response resp;
  bool failed = false;
  try {
    resp = m.route->sync(req);
  } catch (const std::exception& e) {
    s_->log(t_, 500, std::string("handler failed: ") + e.what());
    failed = true;
  }
  if (failed) {
    resp = Response(500);
    resp.set_static_body("Internal Server Error\n");
  }
  return respond(req, resp, h.head_request, leftover);
}

bool Connection::respond(Request& req, Response& resp, bool head_request, std::string_view leftover) {
  std::string& out = output();
  if (resp.take_over_function()) {
    t_->write(out);
    out.clear();
    s_->remove(*this);
    phase_ = Phase::handed_over;
    if (reading_paused_) t_->resume_reading();
    std::unique_ptr<StreamProtocol> self =
        resp.take_over_function()(*t_, std::as_bytes(std::span(leftover.data(), leftover.size())));
    if (self) s_->loop.call_soon([self = std::move(self)]() mutable { self.reset(); });
    return false;
  }
  const int status = resp.status();
  const bool upgrading = status == 101 && resp.upgrade_protocol();
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::uint64_t>(status));
  out.push_back(' ');
  out.append(reason_phrase(status)).append("\r\n");
  out.append(s_->date.get());
  const std::string_view body = resp.body();
  const bool streamed = resp.has_stream_body() && status_has_body(status);
  const bool chunked = streamed && req.minor_version_ >= 1;
  if (streamed && !chunked) req.keep_alive_ = false;  // HTTP/1.0: the body ends with the connection
  if (status_has_body(status)) {
    const std::string_view type = resp.content_type();
    if (!type.empty()) out.append("Content-Type: ").append(type).append("\r\n");
    if (chunked) {
      out.append("Transfer-Encoding: chunked\r\n");
    } else if (!streamed) {
      out.append("Content-Length: ");
      append_number(out, resp.body_length());
      out.append("\r\n");
    }
  }
  if (upgrading)
    out.append("Connection: Upgrade\r\n");
  else if (!req.keep_alive_)
    out.append("Connection: close\r\n");
  else if (req.minor_version_ == 0)
    out.append("Connection: keep-alive\r\n");
  out.append(resp.extra_headers());
  out.append("\r\n");
  if (!head_request && streamed) {
    auto rs = std::make_unique<ResponseStream>(s_, this, std::move(resp.stream_producer()), chunked, req.keep_alive_);
    ResponseStream* raw = rs.get();
    set_job(raw);
    // The task starts on a later pass, after after_processing wrote the head.
    raw->task = create_task(s_->loop, run_stream(std::move(rs)));
    return true;  // process() stops while the stream is the job; finish_stream carries on
  }
  if (!head_request && status_has_body(status)) {
    if (resp.file_fd() >= 0) {
      if (resp.body_length() > 0) {
        auto* f = new FileSend{-1, resp.file_offset(), resp.body_length(), req.keep_alive_};
        f->fd = resp.release_file();
        set_job(f);
        return true;  // process() stops while the file is the job; after_processing pumps it
      }
    } else {
      out.append(body);
    }
  }
  if (upgrading) {
    hand_over(std::move(resp.upgrade_protocol()), leftover);
    return false;
  }
  if (!req.keep_alive_) {
    phase_ = Phase::closing;
    t_->write(out);
    out.clear();
    t_->close();
    return false;
  }
  return true;
}

void Connection::start_exchange(std::string_view bytes, const Router::Route& route, Request& req, bool head_request,
                                bool chunked, std::string* owned_body) {
  auto ex = std::make_unique<Exchange>(s_);
  ex->conn = this;
  ex->route = &route;
  ex->head_request = head_request;
  // Own copies of the request's bytes; every view is moved over to them.
  ex->bytes.assign(bytes);
  const char* from = bytes.data();
  const char* to = ex->bytes.data();
  ex->request = req;
  Request& r = ex->request;
  r.method_ = rebase(req.method_, from, to);
  r.target_ = rebase(req.target_, from, to);
  r.path_ = rebase(req.path_, from, to);
  r.query_ = rebase(req.query_, from, to);
  if (chunked) {
    if (owned_body)
      ex->chunked_body = std::move(*owned_body);
    else
      ex->chunked_body.assign(req.body_);
    r.body_ = ex->chunked_body;
  } else {
    r.body_ = rebase(req.body_, from, to);
  }
  ex->headers.reserve(req.headers_.size());
  for (const Header& h : req.headers_) ex->headers.push_back({rebase(h.name, from, to), rebase(h.value, from, to)});
  r.headers_ = ex->headers;
  for (std::size_t i = 0; i < r.param_count_; ++i) r.params_[i].value = rebase(req.params_[i].value, from, to);
  Exchange* raw = ex.get();
  set_job(raw);
  raw->task = create_task(s_->loop, run_exchange(std::move(ex)));
}

std::size_t Connection::start_stream_exchange(std::string_view in, std::size_t pos, std::size_t head_size,
                                              const Router::Route& route, Request& req, bool head_request,
                                              const Framing& f) {
  continue_sent_ = false;
  phase_ = Phase::between;
  start_exchange(in.substr(pos, head_size), route, req, head_request, false, nullptr);
  Exchange::Body& b = exchange()->body;
  b.kind = f.body;
  b.left = f.length;
  b.open = f.body == BodyKind::chunked || (f.body == BodyKind::length && f.length > 0);
  const std::string_view rest = in.substr(pos + head_size);
  // A client that waits for our word before sending the body gets it now (it sent nothing after the head).
  if (b.open && f.expect_continue && rest.empty() && req.minor_version_ >= 1)
    output().append("HTTP/1.1 100 Continue\r\n\r\n");
  return b.open ? feed_body(rest) : 0;
}

std::size_t Connection::feed_body(std::string_view in) {
  Exchange::Body& b = exchange()->body;
  std::size_t used = 0;
  if (b.kind == BodyKind::length) {
    used = static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), b.left));
    b.buffered.append(in.substr(0, used));
    b.left -= used;
    b.received += used;
    b.open = b.left > 0;
  } else {
    using Kind = ChunkedDecoder::Step::Kind;
    while (used < in.size() || b.decoder.done()) {
      const ChunkedDecoder::Step st = b.decoder.next(in.substr(used));
      used += st.consumed;
      if (st.kind == Kind::data) {
        if (b.decoder.body_bytes() > s_->config.max_body) {
          refuse_body(413, describe(FramingError::body_too_large));
          return in.size();
        }
        b.buffered.append(st.data);
        b.received += st.data.size();
        continue;
      }
      if (st.kind == Kind::error) {
        refuse_body(400, "malformed chunked body");
        return in.size();
      }
      if (st.kind == Kind::done) b.open = false;
      break;
    }
  }
  b.wake();
  return used;
}

void Connection::refuse_body(int status, std::string_view reason) {
  Exchange::Body& b = exchange()->body;
  b.open = false;
  b.error = std::make_exception_ptr(std::runtime_error("http: request body refused: " + std::string(reason)));
  b.wake();
  error_response(status, reason);
}

void Connection::body_consumed() {
  if (phase_ != Phase::closing && phase_ != Phase::handed_over) update_reading();
}

void Connection::send_piece(std::string_view data, bool chunked) {
  if (!chunked) {
    t_->write(std::as_bytes(std::span(data.data(), data.size())));
    return;
  }
  const ChunkPieces chunk(data);
  t_->writelines(chunk.pieces());
}

void Connection::finish_stream(ResponseStream& rs, std::exception_ptr error) {
  clear_job();
  rs.conn = nullptr;
  if (phase_ == Phase::closing) return;
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      // The head went out with 200 (or whatever the handler chose): only a truncated body tells the client.
      s_->log(t_, 500, std::string("streamed body failed: ") + e.what());
    }
    abort();
    return;
  }
  if (rs.chunked) t_->write(std::as_bytes(std::span("0\r\n\r\n", 5)));
  if (!rs.keep_alive) {
    phase_ = Phase::closing;
    t_->close();
    return;
  }
  continue_buffered();
}

void Connection::finish_exchange(Exchange& ex, Response& response, std::exception_ptr error) {
  clear_job();
  ex.conn = nullptr;
  if (phase_ == Phase::closing) return;
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      s_->log(t_, 500, std::string("handler failed: ") + e.what());
    }
    response = Response(500);
    response.set_static_body("Internal Server Error\n");
  }
  if (s_->shutting_down) ex.request.keep_alive_ = false;
  // A streaming handler that did not read its body to the end: the rest cannot be told from the next request.
  if (ex.body.open) ex.request.keep_alive_ = false;
  // The bytes that came after the request (buffered while the handler ran) go to an upgraded protocol.
  std::string leftover;
  if (response.status() == 101 && (response.upgrade_protocol() || response.take_over_function())) {
    leftover.assign(buf_.view());
    buf_.clear();
  }
  if (!respond(ex.request, response, ex.head_request, leftover)) {
    if (phase_ == Phase::handed_over) return;
    after_processing();
    return;
  }
  continue_buffered();
}

void Connection::pump_file() {
  FileSend* const f = file();
  while (f->remaining > 0) {
    if (writing_paused_ || phase_ == Phase::closing) return;  // resume_writing pumps again
    if (!encrypted_ && t_->get_write_buffer_size() == 0) {
      off_t off = static_cast<off_t>(f->offset);
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(f->remaining, 1u << 20));
      const ssize_t n = ::sendfile(t_->fd(), f->fd, &off, want);
      if (n > 0) {
        f->offset += static_cast<std::uint64_t>(n);
        f->remaining -= static_cast<std::uint64_t>(n);
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINVAL && errno != ENOSYS)) {
        finish_file(false);
        return;
      }
      // The socket is full (or takes no sendfile): the rest goes through the transport's buffer.
    }
    char chunk[16 * 1024];
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(f->remaining, sizeof chunk));
    const ssize_t n = ::pread(f->fd, chunk, want, static_cast<off_t>(f->offset));
    if (n <= 0) {
      finish_file(false);
      return;
    }
    f->offset += static_cast<std::uint64_t>(n);
    f->remaining -= static_cast<std::uint64_t>(n);
    t_->write(std::string_view(chunk, static_cast<std::size_t>(n)));
  }
  finish_file(true);
}

void Connection::finish_file(bool ok) {
  FileSend* const f = file();
  const bool keep_alive = f->keep_alive;
  clear_job();
  delete f;
  if (!ok) {
    // The head promised bytes that cannot come (the file shrank, or a read error): the framing is broken.
    s_->log(t_, 500, "file body ended early");
    abort();
    return;
  }
  if (!keep_alive) {
    phase_ = Phase::closing;
    t_->close();
    return;
  }
  continue_buffered();
}

void Connection::hand_over(std::unique_ptr<StreamProtocol> protocol, std::string_view leftover) {
  std::string& out = output();
  t_->write(out);
  out.clear();
  s_->remove(*this);
  phase_ = Phase::handed_over;
  if (reading_paused_) t_->resume_reading();
  Transport& t = *t_;
  StreamProtocol& p = *protocol;
  std::unique_ptr<StreamProtocol> self = t.set_protocol(std::move(protocol));
  // This object's method is still on the stack: it is destroyed on the next pass.
  s_->loop.call_soon([self = std::move(self)]() mutable { self.reset(); });
  p.connection_made(t);
  if (leftover.empty() || t.is_closing()) return;
  if (p.is_buffered()) {
    auto& bp = static_cast<BufferedProtocol&>(p);
    while (!leftover.empty() && !t.is_closing()) {
      std::span<std::byte> space = bp.get_buffer(leftover.size());
      const std::size_t n = std::min(space.size(), leftover.size());
      std::memcpy(space.data(), leftover.data(), n);
      bp.buffer_updated(n);
      leftover.remove_prefix(n);
    }
  } else {
    static_cast<Protocol&>(p).data_received(std::as_bytes(std::span(leftover.data(), leftover.size())));
  }
}

}  // namespace tulipa::http::detail
