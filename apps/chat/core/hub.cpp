#include "hub.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <utility>

#include "text.hpp"

namespace chat {

using Type = Event::Type;

std::string_view Session::room() const noexcept { return room_ ? std::string_view(room_->name) : std::string_view(); }

void Hub::log_to_stderr(std::string_view line) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %.*s\n", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
               tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000), static_cast<int>(line.size()),
               line.data());
}

Hub::Hub(tulipa::EventLoop& loop, Store& store, Limits limits, LogSink log)
    : loop_(loop),
      store_(store),
      limits_(std::move(limits)),
      log_(std::move(log)),
      self_(std::make_shared<Hub*>(this)) {
  limits_.default_room = fold(limits_.default_room);
  room(limits_.default_room);
  if (limits_.idle.count() > 0) {
    sweep_timer_ = loop_.call_later(std::max<tulipa::Duration>(std::chrono::seconds(1), limits_.idle / 8),
                                    [this] { sweep_idle(); });
  }
}

Hub::~Hub() {
  flush_handle_.cancel();
  sweep_timer_.cancel();
}

void Hub::load_history() {
  for (auto& [name, messages] : store_.load_recent(limits_.history)) {
    Room& r = room(name);
    for (Message& m : messages) r.history.push_back(std::move(m));
  }
}

Room& Hub::room(std::string_view folded) {
  auto [it, added] = rooms_.try_emplace(std::string(folded));
  if (added) it->second.name = it->first;
  return it->second;
}

const Room* Hub::find_room(std::string_view name) const {
  auto it = rooms_.find(std::string(name));
  return it == rooms_.end() ? nullptr : &it->second;
}

std::int64_t Hub::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Hub::log(std::string_view what) {
  if (log_) log_(what);
}

// --- connections

std::optional<std::string> Hub::admit(std::string_view ip) const {
  if (shutting_down_) return "the server is shutting down";
  if (sessions_.size() >= limits_.max_clients) {
    return "the server is full (" + std::to_string(limits_.max_clients) + " clients)";
  }
  auto it = per_ip_.find(std::string(ip));
  if (it != per_ip_.end() && it->second >= limits_.max_per_ip) {
    return "too many connections from " + std::string(ip) + " (at most " + std::to_string(limits_.max_per_ip) + ")";
  }
  return std::nullopt;
}

std::string Hub::guest_name() {
  for (;;) {
    std::string name = "guest-" + std::to_string(next_guest_++);
    if (!nicks_.contains(name)) return name;
  }
}

Session& Hub::connect(Client& client, std::string ip, const Hello& hello) {
  auto owned = std::make_unique<Session>();
  Session& s = *owned;
  s.id_ = next_session_++;
  s.client_ = &client;
  s.ip_ = std::move(ip);
  s.last_active_ = loop_.time();
  sessions_.emplace(s.id_, std::move(owned));
  ++per_ip_[s.ip_];

  std::string_view refused;
  if (!hello.nick.empty()) {
    refused = nick_error(hello.nick, limits_.max_nick);
    if (refused.empty() && nicks_.contains(fold(hello.nick))) refused = "that nick is taken";
  }
  s.nick_ = hello.nick.empty() || !refused.empty() ? guest_name() : hello.nick;
  s.nick_key_ = fold(s.nick_);
  nicks_[s.nick_key_] = &s;
  log("connect " + s.nick_ + " from " + s.ip_);

  send(s, {.type = Type::notice,
           .text = "welcome to tulipa chat. /nick NAME picks your name, /join ROOM changes rooms, /help lists "
                   "the commands"});
  send(s, {.type = Type::you_are, .nick = s.nick_});
  if (!refused.empty())
    send(s, {.type = Type::error, .text = "nick " + sanitize(hello.nick) + ": " + std::string(refused)});

  std::string_view wanted = hello.room;
  if (wanted.starts_with('#')) wanted.remove_prefix(1);
  if (!wanted.empty() && room_error(wanted, limits_.max_room).empty()) {
    enter(s, room(fold(wanted)), hello.after_id);
  } else {
    enter(s, room(limits_.default_room), hello.after_id);
  }
  return s;
}

void Hub::disconnect(Session& s, std::string_view reason) {
  if (!s.retired_) {
    if (s.leave_reason_.empty()) s.leave_reason_ = std::string(reason);
    retire(s);
  }
  std::erase(retiring_, &s);
  if (s.dirty_) std::erase(dirty_, &s);
  auto ip = per_ip_.find(s.ip_);
  if (ip != per_ip_.end() && --ip->second == 0) per_ip_.erase(ip);
  sessions_.erase(s.id_);
}

void Hub::retire(Session& s) {
  s.retired_ = true;
  log("leave " + s.nick_ + " #" + std::string(s.room()) +
      (s.leave_reason_.empty() ? "" : " (" + s.leave_reason_ + ")"));
  leave_room(s, s.leave_reason_);
  auto it = nicks_.find(s.nick_key_);
  if (it != nicks_.end() && it->second == &s) nicks_.erase(it);
}

void Hub::kick(Session& s, std::string_view reason) {
  if (s.closing_) return;
  log("kick " + s.nick_ + " from " + s.ip_ + ": " + std::string(reason));
  s.closing_ = true;
  s.leave_reason_ = std::string(reason);
  // What was waiting for this client is dropped (a slow reader would never get it anyway); the reason goes out at
  // once, behind what the transport already holds.
  s.out_.clear();
  std::string why;
  format({.type = Type::error, .text = "disconnected: " + std::string(reason)}, s.client_->format(), why);
  s.client_->write(why);
  s.client_->close();
  // Out of the room at the next flush, not now: a kick can happen while the room's member list is being walked.
  retiring_.push_back(&s);
  schedule_flush();
}

void Hub::shutdown(std::string_view reason) {
  shutting_down_ = true;
  log("shutdown: " + std::string(reason));
  for (auto& [id, s] : sessions_) {
    if (s->closing_) continue;
    send(*s, {.type = Type::error, .text = std::string(reason)});
    s->closing_ = true;  // everyone goes: broadcasts skip closing members, so nobody is told of the others leaving
    s->client_->write(s->out_);
    s->out_.clear();
    s->client_->close();
  }
  dirty_.clear();
  for (auto& [id, s] : sessions_) s->dirty_ = false;
}

// --- input

tulipa::Duration Hub::pace(Session& s, std::size_t bytes) {
  double before = s.gate_.strikes;
  tulipa::Duration wait = s.gate_.take(loop_.time(), limits_.flood_rate, limits_.flood_burst,
                                       FloodGate::cost(bytes, limits_.flood_line_bytes));
  if (wait == tulipa::Duration::zero()) return wait;
  if (s.gate_.strikes >= limits_.flood_kick) {
    kick(s, "flooding: more than " + std::to_string(static_cast<long>(limits_.flood_rate)) + " lines (or " +
                std::to_string(static_cast<long>(limits_.flood_rate * static_cast<double>(limits_.flood_line_bytes))) +
                " bytes) a second");
    return tulipa::Duration::zero();
  }
  double warn = limits_.flood_warn;
  if (before < warn && s.gate_.strikes >= warn) {
    log("warn " + s.nick_ + " from " + s.ip_ + ": flooding");
    send(s, {.type = Type::error, .text = "you are sending too fast: slow down or you will be disconnected"});
  }
  return wait;
}

void Hub::line_too_long(Session& s) {
  if (s.closing_) return;
  send(s, {.type = Type::error,
           .text = "line too long (more than " + std::to_string(limits_.max_line) + " bytes); it was dropped"});
}

void Hub::receive(Session& s, std::string_view line) {
  if (s.closing_) return;
  s.last_active_ = loop_.time();
  if (line.size() > limits_.max_line) {
    line_too_long(s);
    return;
  }
  if (line.starts_with('/') && !line.starts_with("//")) {
    command(s, line.substr(1));
    return;
  }
  if (line.starts_with("//")) line.remove_prefix(1);  // "//path" says "/path"
  say(s, line, false);
}

void Hub::command(Session& s, std::string_view line) {
  std::size_t space = line.find_first_of(" \t");
  std::string name = fold(line.substr(0, space));
  std::string_view arg = space == std::string_view::npos ? std::string_view() : trim(line.substr(space));
  if (name == "help") {
    for (std::string_view h : {"/nick NAME     your name (letters, digits, _ and -; unique)",
                               "/join ROOM     go to a room (made if new); /leave goes back to #lobby",
                               "/rooms         the rooms and how many are in each", "/who          who is in this room",
                               "/me TEXT       an action (* alice waves)", "/msg NICK TEXT a private message",
                               "/quit [REASON] leave", "//TEXT        says /TEXT"}) {
      send(s, {.type = Type::notice, .text = h});
    }
  } else if (name == "nick") {
    set_nick(s, arg);
  } else if (name == "join") {
    join(s, arg);
  } else if (name == "leave" || name == "part") {
    if (s.room() == limits_.default_room) {
      send(s, {.type = Type::error, .text = "you are in #" + limits_.default_room + "; /quit leaves the server"});
    } else {
      join(s, limits_.default_room);
    }
  } else if (name == "rooms") {
    std::vector<RoomInfo> list;
    for (const auto& [key, r] : rooms_) {
      if (!r.members.empty()) list.push_back({r.name, r.members.size()});
    }
    std::sort(list.begin(), list.end(), [](const RoomInfo& a, const RoomInfo& b) { return a.name < b.name; });
    send(s, {.type = Type::rooms, .rooms = list});
  } else if (name == "who") {
    std::vector<std::string> names;
    names.reserve(s.room_->members.size());
    for (Session* m : s.room_->members) names.push_back(m->nick_);
    std::sort(names.begin(), names.end());
    send(s, {.type = Type::members, .room = s.room(), .names = names});
  } else if (name == "me") {
    if (arg.empty()) {
      send(s, {.type = Type::error, .text = "usage: /me TEXT"});
    } else {
      say(s, arg, true);
    }
  } else if (name == "msg") {
    private_message(s, arg);
  } else if (name == "quit") {
    s.leave_reason_ = arg.empty() ? "quit" : "quit: " + sanitize(arg);
    send(s, {.type = Type::notice, .text = "bye"});
    flush();  // "bye" before the close
    s.closing_ = true;
    s.client_->close();
    retiring_.push_back(&s);
    schedule_flush();
  } else {
    send(s, {.type = Type::error, .text = "unknown command /" + sanitize(name) + "; /help lists the commands"});
  }
}

void Hub::say(Session& s, std::string_view text, bool action) {
  std::string clean = sanitize(text);
  if (trim(clean).empty()) return;
  Message m{.time_ms = now_ms(), .room = s.room_->name, .nick = s.nick_, .text = std::move(clean), .action = action};
  std::uint64_t sender = s.id_;
  std::weak_ptr<Hub*> weak = self_;
  std::string room_name = s.room_->name;
  store_.append(std::move(m), [weak, sender, room_name](Message stored, std::exception_ptr error) {
    auto self = weak.lock();
    if (!self) return;
    Hub& hub = **self;
    if (error) {
      std::string why = "unknown error";
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        why = e.what();
      } catch (...) {
      }
      hub.log("error: store refused a message of #" + room_name + ": " + why);
      auto it = hub.sessions_.find(sender);
      if (it != hub.sessions_.end()) {
        hub.send(*it->second,
                 {.type = Type::error, .text = "your message was not sent: the store failed (" + why + ")"});
      }
      return;
    }
    hub.stored(room_name, std::move(stored));
  });
}

void Hub::stored(std::string_view room_name, Message m) {
  Room& r = room(room_name);
  broadcast(r, {.type = Type::message, .message = &m});
  if (limits_.history == 0) return;
  if (r.history.size() == limits_.history) r.history.pop_front();
  r.history.push_back(std::move(m));
}

void Hub::set_nick(Session& s, std::string_view nick) {
  if (nick.empty()) {
    send(s, {.type = Type::you_are, .nick = s.nick_});
    return;
  }
  if (std::string_view why = nick_error(nick, limits_.max_nick); !why.empty()) {
    send(s, {.type = Type::error,
             .text = std::string(why) + " (1 to " + std::to_string(limits_.max_nick) +
                     " letters, digits, _ or -, starting with a letter)"});
    return;
  }
  std::string key = fold(nick);
  auto it = nicks_.find(key);
  if (it != nicks_.end() && it->second != &s) {
    send(s, {.type = Type::error, .text = "the nick " + std::string(nick) + " is taken"});
    return;
  }
  if (nick == s.nick_) return;
  std::string old = std::exchange(s.nick_, std::string(nick));
  nicks_.erase(s.nick_key_);
  s.nick_key_ = std::move(key);
  nicks_[s.nick_key_] = &s;
  log("nick " + old + " -> " + s.nick_);
  send(s, {.type = Type::you_are, .nick = s.nick_});
  broadcast(*s.room_, {.type = Type::renamed, .room = s.room(), .nick = old, .other = s.nick_});
}

void Hub::join(Session& s, std::string_view name, std::optional<std::uint64_t> after_id) {
  if (name.starts_with('#')) name.remove_prefix(1);
  if (std::string_view why = room_error(name, limits_.max_room); !why.empty()) {
    send(s, {.type = Type::error, .text = std::string(why)});
    return;
  }
  std::string key = fold(name);
  if (key == s.room()) {
    send(s, {.type = Type::notice, .text = "you are in #" + key});
    return;
  }
  leave_room(s, "");
  enter(s, room(key), after_id);
}

void Hub::enter(Session& s, Room& r, std::optional<std::uint64_t> after_id) {
  s.room_ = &r;
  s.room_index_ = r.members.size();
  r.members.push_back(&s);
  log("join " + s.nick_ + " #" + r.name);
  broadcast(r, {.type = Type::joined, .room = r.name, .nick = s.nick_});

  std::vector<std::string> names;
  names.reserve(r.members.size());
  for (Session* m : r.members) names.push_back(m->nick_);
  std::sort(names.begin(), names.end());
  send(s, {.type = Type::members, .room = r.name, .names = names});

  // History: the last messages, or (a reconnecting page) those after the last id it saw.
  auto from = r.history.begin();
  if (after_id) {
    from = std::upper_bound(r.history.begin(), r.history.end(), *after_id,
                            [](std::uint64_t id, const Message& m) { return id < m.id; });
  }
  std::size_t count = static_cast<std::size_t>(r.history.end() - from);
  if (count > 0) {
    send(s, {.type = Type::history, .room = r.name, .count = count});
    for (auto it = from; it != r.history.end(); ++it)
      send(s, {.type = Type::message, .history = true, .message = &*it});
  }
}

void Hub::leave_room(Session& s, std::string_view reason) {
  Room* r = std::exchange(s.room_, nullptr);
  if (!r) return;
  // O(1) removal: the last member takes this one's place.
  Session* last = r->members.back();
  r->members[s.room_index_] = last;
  last->room_index_ = s.room_index_;
  r->members.pop_back();
  broadcast(*r, {.type = Type::left, .room = r->name, .nick = s.nick_, .text = reason});
  if (r->members.empty() && r->history.empty() && r->name != limits_.default_room) rooms_.erase(r->name);
}

void Hub::private_message(Session& s, std::string_view args) {
  std::size_t space = args.find_first_of(" \t");
  std::string_view to = args.substr(0, space);
  std::string_view text = space == std::string_view::npos ? std::string_view() : trim(args.substr(space));
  if (to.empty() || text.empty()) {
    send(s, {.type = Type::error, .text = "usage: /msg NICK TEXT"});
    return;
  }
  auto it = nicks_.find(fold(to));
  if (it == nicks_.end() || it->second->closing_) {
    send(s, {.type = Type::error, .text = "nobody is called " + sanitize(to)});
    return;
  }
  Session& target = *it->second;
  std::string clean = sanitize(text);
  std::int64_t now = now_ms();
  send(target, {.type = Type::private_in, .nick = s.nick_, .text = clean, .time_ms = now});
  send(s, {.type = Type::private_out, .nick = target.nick_, .text = clean, .time_ms = now});
}

// --- output

void Hub::send(Session& s, const Event& e) {
  if (s.closing_) return;
  std::string bytes;
  format(e, s.client_->format(), bytes);
  enqueue(s, bytes);
}

void Hub::broadcast(Room& r, const Event& e) {
  // Formatted once per wire format, then appended to each member's pending output.
  std::string formatted[2];
  bool done[2] = {false, false};
  for (Session* m : r.members) {
    if (m->closing_) continue;
    auto f = static_cast<std::size_t>(m->client_->format());
    if (!done[f]) {
      format(e, m->client_->format(), formatted[f]);
      done[f] = true;
    }
    enqueue(*m, formatted[f]);
  }
}

void Hub::enqueue(Session& s, std::string_view bytes) {
  std::size_t waiting = s.out_.size() + s.client_->write_buffer_size();
  if (waiting + bytes.size() > limits_.max_queue) {
    kick(s, "too slow: " + std::to_string(waiting) + " bytes were waiting for you to read them");
    return;
  }
  s.out_.append(bytes);
  mark_dirty(s);
}

void Hub::mark_dirty(Session& s) {
  if (s.dirty_) return;
  s.dirty_ = true;
  dirty_.push_back(&s);
  schedule_flush();
}

void Hub::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  flush_handle_ = loop_.call_soon([this] {
    flush_scheduled_ = false;
    flush();
  });
}

void Hub::flush() {
  // Kicked members leave their rooms first (their leave notices join this pass's output).
  while (!retiring_.empty()) {
    Session* s = retiring_.back();
    retiring_.pop_back();
    if (!s->retired_) retire(*s);
  }
  std::vector<Session*> batch;
  batch.swap(dirty_);
  for (Session* s : batch) {
    s->dirty_ = false;
    if (s->closing_ || s->out_.empty()) continue;
    s->client_->write(s->out_);
    s->out_.clear();
    if (s->out_.capacity() > 4096) s->out_.shrink_to_fit();  // an idle member holds no big buffer
  }
}

void Hub::sweep_idle() {
  tulipa::TimePoint now = loop_.time();
  std::vector<Session*> idle;
  for (auto& [id, s] : sessions_) {
    if (!s->closing_ && now - s->last_active_ >= limits_.idle) idle.push_back(s.get());
  }
  for (Session* s : idle) kick(*s, "idle for " + std::to_string(limits_.idle.count()) + " s");
  sweep_timer_ =
      loop_.call_later(std::max<tulipa::Duration>(std::chrono::seconds(1), limits_.idle / 8), [this] { sweep_idle(); });
}

}  // namespace chat
