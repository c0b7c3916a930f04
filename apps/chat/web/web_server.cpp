#include "web_server.hpp"

#include <charconv>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "tulipa/http/router.hpp"
#include "tulipa/http/websocket.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/tls_net.hpp"

namespace chat {
namespace ws = tulipa::websocket;

namespace {

// A browser as a hub member: the callback form of tulipa's WebSocket (a Handler per connection). Each text message
// is one line for the hub; the hub's batch of a pass leaves as one message of JSON lines.
class WsMember final : public ws::Handler, public Client {
 public:
  WsMember(Hub& hub, Hello hello) : hub_(hub), hello_(std::make_unique<Hello>(std::move(hello))) {}
  ~WsMember() override { stop_waiting(); }

  void on_open(ws::Connection& conn) override {
    conn_ = &conn;
    std::unique_ptr<Hello> hello = std::move(hello_);  // needed only here: an idle member does not keep it
    tulipa::Transport* t = conn.transport();
    std::string ip = t ? t->peername().host() : std::string();
    if (std::optional<std::string> refused = hub_.admit(ip)) {
      std::string why;
      format_json({.type = Event::Type::error, .text = *refused}, why);
      conn.send_text(why);
      conn.close(ws::close_code::try_again_later, "refused");
      return;
    }
    session_ = &hub_.connect(*this, std::move(ip), *hello);
  }

  void on_message(ws::Connection& conn, ws::Message&& m) override {
    if (!session_ || session_->closing() || !m.text) return;
    auto bytes = m.data.span();
    if (bytes.size() > hub_.limits().max_line) {
      hub_.line_too_long(*session_);
      return;
    }
    std::string_view line(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (waiting_) {  // behind messages waiting for the flood gate
      waiting_->queue.emplace_back(line);
      return;
    }
    // The common case: the gate lets it through, and the hub has it without a copy.
    tulipa::Duration wait = hub_.pace(*session_, line.size());
    if (session_->closing()) return;
    if (wait <= tulipa::Duration::zero()) {
      hub_.receive(*session_, line);
      return;
    }
    waiting_ = std::make_unique<Waiting>();
    waiting_->queue.emplace_back(line);
    waiting_->paced = true;
    pause(conn, wait);
  }

  void on_close(ws::Connection&, std::uint16_t, std::string_view, std::exception_ptr) override {
    stop_waiting();
    if (session_) hub_.disconnect(*session_);
    session_ = nullptr;
    conn_ = nullptr;
  }

  // Client
  WireFormat format() const noexcept override { return WireFormat::json; }
  void write(std::string_view batch) override {
    if (conn_) conn_->send_text(batch);
  }
  std::size_t write_buffer_size() const noexcept override { return conn_ ? conn_->buffered_amount() : 0; }
  void close() override {
    if (conn_) conn_->close(ws::close_code::policy_violation, "disconnected by the server");
  }

 private:
  // Messages waiting for the flood gate, while one does: made when a message must wait, dropped once the last one
  // was handed over, so that an idle member holds none of it (its queue and timer were 56 of the member's bytes).
  // A few messages at most: reading pauses while one waits. A vector, not a deque: libstdc++'s deque allocates 576
  // bytes as it is made.
  struct Waiting {
    std::vector<std::string> queue;
    bool paced = false;  // the front message took its token and only waits for its time
    tulipa::TimerHandle resume;
  };

  // Stops reading the socket until `wait` is over (the browser's messages then wait in its own buffers), then
  // drains the queue.
  void pause(ws::Connection& conn, tulipa::Duration wait) {
    if (tulipa::Transport* t = conn.transport()) t->pause_reading();
    waiting_->resume = conn.get_loop().call_later(wait, [this, &conn] {
      if (tulipa::Transport* t = conn.transport()) t->resume_reading();
      drain(conn);
    });
  }

  // Hands queued messages to the hub as the flood gate allows.
  void drain(ws::Connection& conn) {
    while (waiting_ && !waiting_->queue.empty() && session_ && !session_->closing()) {
      if (!waiting_->paced) {
        tulipa::Duration wait = hub_.pace(*session_, waiting_->queue.front().size());
        if (session_->closing()) break;
        waiting_->paced = true;
        if (wait > tulipa::Duration::zero()) {
          pause(conn, wait);
          return;
        }
      }
      waiting_->paced = false;
      std::string line = std::move(waiting_->queue.front());
      waiting_->queue.erase(waiting_->queue.begin());
      if (waiting_->queue.empty()) waiting_.reset();  // before receive: the hub may close this member
      hub_.receive(*session_, line);
    }
  }

  void stop_waiting() noexcept {
    if (waiting_) waiting_->resume.cancel();
    waiting_.reset();
  }

  Hub& hub_;
  std::unique_ptr<Hello> hello_;  // what the page asked for in its URL, until on_open
  ws::Connection* conn_ = nullptr;
  Session* session_ = nullptr;
  std::unique_ptr<Waiting> waiting_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

}  // namespace

Hello parse_hello(std::string_view target) {
  Hello hello;
  std::size_t q = target.find('?');
  if (q == std::string_view::npos) return hello;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = pair.substr(0, eq);
    std::string value = percent_decode(pair.substr(eq + 1));
    if (key == "nick") {
      hello.nick = value;
    } else if (key == "room") {
      hello.room = value;
    } else if (key == "after") {
      std::uint64_t id = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
      if (ec == std::errc() && end == value.data() + value.size()) hello.after_id = id;
    }
  }
  return hello;
}

std::uint16_t WebServer::port() const { return (encrypted() ? tls_listener.sockets() : http.sockets()).at(0).port(); }

tulipa::Future<void> WebServer::shutdown(tulipa::Duration grace) {
  if (tls_listener) tls_listener.close();
  return http.shutdown(grace);
}

WebServer start_web_server(tulipa::EventLoop& loop, Hub& hub, std::string_view host, std::uint16_t port,
                           const WebOptions& options) {
  struct Page {
    std::string path, type, body;
  };
  // The files are read once; the responses point at them (set_static_body), so the pages live with the router.
  auto pages = std::make_shared<std::vector<Page>>(std::vector<Page>{
      {"/", "text/html; charset=utf-8", read_file(options.root + "/index.html")},
      {"/app.js", "text/javascript; charset=utf-8", read_file(options.root + "/app.js")},
      {"/style.css", "text/css; charset=utf-8", read_file(options.root + "/style.css")},
  });
  tulipa::http::Router router;
  for (const Page& p : *pages) {
    router.get(p.path, [pages, &p](tulipa::http::Request&) {
      tulipa::http::Response r(200);
      r.set_static_body(p.body, p.type);
      r.add_header("Cache-Control", "no-cache");
      r.add_header("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:");
      r.add_header("X-Content-Type-Options", "nosniff");
      return r;
    });
  }
  ws::Options ws_options;
  ws_options.check_origin = ws::same_origin(options.allowed_origins);
  ws_options.deflate.enabled = options.deflate;
  ws::Upgrader upgrader(
      [&hub](const ws::UpgradeRequest& req) -> std::unique_ptr<ws::Handler> {
        return std::make_unique<WsMember>(hub, parse_hello(req.target));
      },
      ws_options);
  router.get("/ws", upgrader);
  WebServer server;
  tulipa::http::ServerConfig config;
  config.listen.reuse_port = options.reuse_port;
  if (!options.tls) {
    server.http = tulipa::http::serve(loop, std::move(router), host, port, config);
    return server;
  }
  server.http = tulipa::http::make_server(loop, std::move(router), config);
  server.tls_listener =
      tulipa::create_server(loop, server.http.factory(/*encrypted=*/true), host, port, *options.tls, config.listen);
  return server;
}

}  // namespace chat
