// The HTTP/1.1 client (client.hpp): a pool of stream connections per origin, one request at a time on each.
#include "tulipa/http/client.hpp"

#include <charconv>

#include "tulipa/http/framing.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/timeout.hpp"
#include "tulipa/tls_streams.hpp"

namespace tulipa::http {

std::string_view ClientResponse::header(std::string_view name) const noexcept {
  for (const auto& [n, v] : headers)
    if (iequals(n, name)) return v;
  return {};
}

namespace {

struct Url {
  bool https = false;
  std::string host;  // without brackets
  std::uint16_t port = 80;
  std::string target;     // path and query
  std::string authority;  // for the Host field
  std::string key() const { return (https ? "https://" : "http://") + authority; }
};

Url parse_url(std::string_view url) {
  Url u;
  if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else if (url.starts_with("https://")) {
    url.remove_prefix(8);
    u.https = true;
    u.port = 443;
  } else {
    throw std::invalid_argument("http: only http:// and https:// URLs: " + std::string(url));
  }
  const std::size_t slash = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, slash);
  std::string_view rest = slash == std::string_view::npos ? std::string_view("/") : url.substr(slash);
  if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  if (authority.find('@') != std::string_view::npos) throw std::invalid_argument("http: user info in URLs is refused");
  u.authority = authority;
  std::string_view host = authority;
  if (host.starts_with("[")) {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("http: bad IPv6 literal");
    std::string_view after = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (after.starts_with(":"))
      authority = after;  // port below
    else
      authority = {};
  } else if (const std::size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    authority = host.substr(colon);
    host = host.substr(0, colon);
  } else {
    authority = {};
  }
  if (authority.starts_with(":")) {
    const std::string_view p = authority.substr(1);
    unsigned v = 0;
    const auto r = std::from_chars(p.data(), p.data() + p.size(), v);
    if (r.ec != std::errc() || r.ptr != p.data() + p.size() || v == 0 || v > 65535)
      throw std::invalid_argument("http: bad port in URL");
    u.port = static_cast<std::uint16_t>(v);
  }
  if (host.empty()) throw std::invalid_argument("http: URL without a host");
  u.host = host;
  u.target = rest.starts_with("?") ? "/" + std::string(rest) : std::string(rest);
  return u;
}

// A Location, relative or absolute, against the URL that answered.
std::string resolve(const Url& base, std::string_view location) {
  if (location.starts_with("http://") || location.starts_with("https://")) return std::string(location);
  const std::string origin = base.key();
  if (location.starts_with("//")) return (base.https ? "https:" : "http:") + std::string(location);
  if (location.starts_with("/")) return origin + std::string(location);
  std::string path = base.target.substr(0, base.target.find('?'));
  path = path.substr(0, path.rfind('/') + 1);
  return origin + path + std::string(location);
}

bool idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" || m == "TRACE";
}

struct Conn {
  StreamReader reader;
  StreamWriter writer;
  TimePoint idle_since{};
  bool reused = false;
};

}  // namespace

struct Client::Impl {
  Impl(EventLoop& l, ClientOptions o) : loop(l), options(std::move(o)) {
    if (!options.ssl) {
      options.ssl = SslContext::client();
      options.ssl->set_alpn_protocols({"http/1.1"});
    }
  }
  EventLoop& loop;
  ClientOptions options;
  std::map<std::string, std::vector<Conn>> idle;
  std::uint64_t opened = 0;

  // A pooled connection still fresh, or none. Stale ones (idle too long, or closed by the peer) are dropped.
  std::optional<Conn> take(const std::string& key) {
    auto it = idle.find(key);
    if (it == idle.end()) return std::nullopt;
    std::vector<Conn>& v = it->second;
    const TimePoint now = loop.time();
    while (!v.empty()) {
      Conn c = std::move(v.back());
      v.pop_back();
      if (now - c.idle_since < options.idle_timeout && !c.writer.is_closing() && !c.reader.at_eof() &&
          c.reader.buffered() == 0) {
        c.reused = true;
        return c;
      }
      c.writer.close();
    }
    return std::nullopt;
  }
  void put(const std::string& key, Conn c) {
    std::vector<Conn>& v = idle[key];
    if (v.size() >= options.max_idle_per_host) {
      c.writer.close();
      return;
    }
    c.idle_since = loop.time();
    v.push_back(std::move(c));
  }
};

namespace {

Coro<Conn> open(Client::Impl& impl, const Url& u) {
  ++impl.opened;
  const std::string host = u.host;
  const std::uint16_t port = u.port;
  const bool https = u.https;
  EventLoop& loop = impl.loop;
  SslContext ssl = *impl.options.ssl;
  StreamPair pair = co_await timeout(impl.options.connect_timeout, [&]() -> Coro<StreamPair> {
    if (https) {
      SslOptions so;
      so.server_hostname = host;
      co_return co_await open_connection(loop, host, port, ssl, StreamOptions{}, so);
    }
    co_return co_await open_connection(loop, host, port);
  });
  co_return Conn{std::move(pair.reader), std::move(pair.writer)};
}

// Reads until the end of the response head; returns everything read (the head, and any body bytes that came with
// it). `nothing` stays true while no byte arrived (for the stale-connection retry).
Coro<std::string> read_head(Conn& c, std::size_t max_head, bool& nothing) {
  nothing = true;
  std::string head;
  for (;;) {
    Bytes b = co_await c.reader.read(16 * 1024);
    if (b.size() == 0) throw ProtocolError("http: the server closed the connection before answering");
    nothing = false;
    head.append(b.view());
    if (head.find("\r\n\r\n") != std::string::npos) co_return head;
    if (head.size() > max_head) throw ProtocolError("http: response head too large");
  }
}

// A streamed request body's writer: each piece a chunk, then a wait for the connection to drain.
class ChunkWriter final : public BodyWriter {
 public:
  explicit ChunkWriter(StreamWriter& w) noexcept : w_(w) {}
  Coro<void> write(std::string_view data) override {
    if (!data.empty()) {
      const ChunkPieces chunk(data);
      w_.writelines(chunk.pieces());
    }
    co_await w_.drain();
  }

 private:
  StreamWriter& w_;
};

// `producer` (may be null): the body is streamed, chunked, and `body` is unused.
Coro<ClientResponse> exchange(Client::Impl& impl, const std::string& method, const Url& u, const std::string& body,
                              const BodyProducer* producer, const HeaderList& headers) {
  const std::string key = u.key();
  std::string req = method + " " + u.target + " HTTP/1.1\r\nHost: " + u.authority + "\r\n";
  bool has_ua = false;
  for (const auto& [n, v] : headers) {
    if (n.find_first_of("\r\n:") != std::string::npos || v.find_first_of("\r\n") != std::string::npos)
      throw std::invalid_argument("http: CR, LF or ':' in a header name, CR or LF in a value");
    if (iequals(n, "host") || iequals(n, "content-length") || iequals(n, "transfer-encoding"))
      throw std::invalid_argument("http: Host and the body's framing are the client's to write");
    has_ua = has_ua || iequals(n, "user-agent");
    req += n + ": " + v + "\r\n";
  }
  if (!has_ua) req += "User-Agent: tulipa\r\n";
  if (producer)
    req += "Transfer-Encoding: chunked\r\n";
  else if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  if (!producer) req += body;

  for (int attempt = 0;; ++attempt) {
    std::optional<Conn> pooled;
    if (attempt == 0) pooled = impl.take(key);
    if (!pooled) pooled.emplace(co_await open(impl, u));  // (no co_await inside ?: : g++ 12 mishandles it)
    Conn c = std::move(*pooled);
    // From here, the connection goes back to the pool only at the very end (a cancellation or an error drops it).
    bool nothing = true;
    std::string raw;
    try {
      c.writer.write(req);
      if (producer) {
        ChunkWriter w(c.writer);
        co_await (*producer)(w);
        c.writer.write(std::string_view("0\r\n\r\n"));
      }
      co_await c.writer.drain();
      raw = co_await read_head(c, impl.options.head.max_head, nothing);
    } catch (const std::exception&) {
      c.writer.close();
      // A pooled connection the server had closed: safe to send again only if nothing came back and the
      // request may be repeated (a streamed body cannot be).
      if (c.reused && nothing && idempotent(method) && !producer && attempt == 0) continue;
      throw;
    }
    ResponseHead head;
    std::vector<Header> fields(128);
    const ParseResult r = parse_response(raw, head, fields, impl.options.head);
    if (!r.complete()) {
      c.writer.close();
      throw ProtocolError(std::string("http: malformed response head: ") + std::string(describe(r.error)));
    }
    fields.resize(head.header_count);
    const Framing f = response_framing(head, fields, method);
    if (f.error != FramingError::none) {
      c.writer.close();
      throw ProtocolError(std::string("http: ") + std::string(describe(f.error)));
    }
    ClientResponse resp;
    resp.status = head.status;
    resp.reason = head.reason;
    for (const Header& h : fields) resp.headers.emplace_back(h.name, h.value);
    std::string pending = raw.substr(r.consumed);  // body bytes read with the head
    const std::uint64_t max_body = impl.options.max_body;
    bool reusable = f.keep_alive;
    try {
      if (f.body == BodyKind::length) {
        if (f.length > max_body) throw ProtocolError("http: response body too large");
        if (pending.size() > f.length) reusable = false;  // more than the body: unframed bytes, do not reuse
        resp.body = pending.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(f.length, pending.size())));
        if (resp.body.size() < f.length) {
          Bytes rest = co_await c.reader.readexactly(static_cast<std::size_t>(f.length - resp.body.size()));
          resp.body.append(rest.view());
        }
      } else if (f.body == BodyKind::chunked) {
        ChunkedDecoder dec;
        for (;;) {
          std::string_view in = pending;
          bool done = false;
          for (;;) {
            const ChunkedDecoder::Step s = dec.next(in);
            in.remove_prefix(s.consumed);
            if (s.kind == ChunkedDecoder::Step::Kind::error) throw ProtocolError("http: malformed chunked body");
            if (s.kind == ChunkedDecoder::Step::Kind::done) {
              done = true;
              break;
            }
            if (s.kind == ChunkedDecoder::Step::Kind::more) break;
            resp.body.append(s.data);
            if (resp.body.size() > max_body) throw ProtocolError("http: response body too large");
          }
          if (done) {
            if (!in.empty()) reusable = false;
            break;
          }
          pending.assign(in);
          Bytes more = co_await c.reader.read(64 * 1024);
          if (more.size() == 0) throw ProtocolError("http: connection closed inside a chunked body");
          pending.append(more.view());
        }
      } else if (f.body == BodyKind::until_close) {
        resp.body = std::move(pending);
        for (;;) {
          Bytes more = co_await c.reader.read(64 * 1024);
          if (more.size() == 0) break;
          resp.body.append(more.view());
          if (resp.body.size() > max_body) throw ProtocolError("http: response body too large");
        }
        reusable = false;
      } else if (!pending.empty()) {
        reusable = false;
      }
    } catch (...) {
      c.writer.close();
      throw;
    }
    if (reusable && head.status >= 200)
      impl.put(key, std::move(c));
    else
      c.writer.close();
    co_return resp;
  }
}

}  // namespace

Client::Client(EventLoop& loop, ClientOptions options) : impl_(std::make_shared<Impl>(loop, std::move(options))) {}

Client::~Client() { close_idle(); }

std::size_t Client::idle_connections() const noexcept {
  std::size_t n = 0;
  for (const auto& [k, v] : impl_->idle) n += v.size();
  return n;
}

std::uint64_t Client::connections_opened() const noexcept { return impl_->opened; }

void Client::close_idle() noexcept {
  for (auto& [k, v] : impl_->idle)
    for (Conn& c : v) c.writer.close();
  impl_->idle.clear();
}

namespace {

// One call with its redirects, under the total timeout. `stream` (may be empty): a streamed body, produced once.
// (Called only outside a co_await: its by-value arguments are what g++ 12 mishandles there, coroutines.md.)
Coro<ClientResponse> call(std::shared_ptr<Client::Impl> impl, std::string method, std::string url, std::string body,
                          BodyProducer stream, HeaderList headers) {
  const BodyProducer* producer = stream ? &stream : nullptr;
  co_return co_await timeout(impl->options.total_timeout, [&]() -> Coro<ClientResponse> {
    std::string m = method;
    std::string b = body;
    std::string current = url;
    for (int redirects = 0;; ++redirects) {
      const Url u = parse_url(current);
      ClientResponse r = co_await exchange(*impl, m, u, b, producer, headers);
      r.url = current;
      const bool redirect = r.status == 301 || r.status == 302 || r.status == 303 || r.status == 307 || r.status == 308;
      const std::string_view location = r.header("location");
      if (!redirect || location.empty() || redirects >= impl->options.max_redirects) co_return r;
      if (r.status == 303 || ((r.status == 301 || r.status == 302) && m == "POST")) {
        if (m != "HEAD") m = "GET";
        b.clear();
        producer = nullptr;
      } else if (producer) {
        co_return r;  // the body would have to be sent again
      }
      current = resolve(u, location);
    }
  });
}

}  // namespace

Coro<ClientResponse> Client::request(std::string method, std::string url, std::string body, HeaderList headers) {
  // (impl_ copied: the pool outlives the call even if the Client goes first)
  return call(impl_, std::move(method), std::move(url), std::move(body), nullptr, std::move(headers));
}

Coro<ClientResponse> Client::request_stream(std::string method, std::string url, BodyProducer body,
                                            HeaderList headers) {
  if (!body) throw std::invalid_argument("http::Client::request_stream: no body producer");
  return call(impl_, std::move(method), std::move(url), {}, std::move(body), std::move(headers));
}

namespace {
struct SharedClient final : LoopExtension {
  std::unique_ptr<Client> client;
  void on_close(EventLoop&) noexcept override {
    if (client) client->close_idle();
  }
};
Client& shared_client() {
  EventLoop& loop = get_running_loop();
  SharedClient& s = loop.extension<SharedClient>();
  if (!s.client) s.client = std::make_unique<Client>(loop);
  return *s.client;
}
}  // namespace

Coro<ClientResponse> request(std::string method, std::string url, std::string body, HeaderList headers) {
  return shared_client().request(std::move(method), std::move(url), std::move(body), std::move(headers));
}

Coro<ClientResponse> get(std::string url, HeaderList headers) {
  return shared_client().request("GET", std::move(url), {}, std::move(headers));
}

}  // namespace tulipa::http
