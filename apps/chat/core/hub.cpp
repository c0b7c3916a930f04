#include "hub.hpp"

#include <algorithm>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <cstdio>
#include <ctime>
#include <utility>

#include "text.hpp"

namespace chat {

using Type = Event::Type;

namespace {
// Guest names are given by the server (nick_error refuses them to users); under a directory they name the instance
// that gave them, so they need no claim.
bool is_guest(std::string_view key) { return key.starts_with("guest-"); }
}  // namespace

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
  trim_timer_.cancel();
}

tulipa::Coro<void> Hub::load_history() {
  tulipa::Coro<std::map<std::string, std::vector<Message>>> loading = store_.load_recent(limits_.history);
  std::map<std::string, std::vector<Message>> recent = co_await std::move(loading);
  for (auto& [name, messages] : recent) {
    Room& r = room(name);
    if (messages.empty()) continue;
    r.last_seq = messages.back().seq;
    r.last_id = messages.back().id;
    std::size_t skip = messages.size() > limits_.history ? messages.size() - limits_.history : 0;
    for (std::size_t i = skip; i < messages.size(); ++i) r.history.push_back(std::move(messages[i]));
  }
}

// The per-client budget (bench/chat idle figures): a field added here is paid by every idle client.
static_assert(sizeof(Session) <= 160, "Session outgrew its idle budget");

std::size_t Hub::NickHash::operator()(std::string_view nick) const noexcept {
  std::size_t h = 14695981039346656037u;  // FNV-1a over the folded bytes
  for (char c : nick) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211u;
  }
  return h;
}

bool Hub::NickEq::same_nick(std::string_view a, std::string_view b) noexcept {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

Session* Hub::session(std::uint64_t id) const {
  std::size_t slot = id & 0xffffffffu;
  Session* s = slot < sessions_.size() ? sessions_[slot].get() : nullptr;
  return s && s->id_ == id ? s : nullptr;
}

std::string Hub::why(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "unknown error";
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
  if (live_sessions_ >= limits_.max_clients) {
    return "the server is full (" + std::to_string(limits_.max_clients) + " clients)";
  }
  auto it = per_ip_.find(std::string(ip));
  if (it != per_ip_.end() && it->second >= limits_.max_per_ip) {
    return "too many connections from " + std::string(ip) + " (at most " + std::to_string(limits_.max_per_ip) + ")";
  }
  return std::nullopt;
}

std::string Hub::guest_name() {
  std::string_view prefix = dir_ ? dir_->guest_prefix() : std::string_view("guest-");
  for (;;) {
    std::string name = std::string(prefix) + std::to_string(next_guest_++);
    if (!nicks_.contains(name)) return name;
  }
}

Session& Hub::connect(Client& client, std::string ip, const Hello& hello) {
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(sessions_.size());
    sessions_.emplace_back();
  }
  sessions_[slot] = std::make_unique<Session>();
  ++live_sessions_;
  Session& s = *sessions_[slot];
  s.id_ = (next_session_++ << 32) | slot;
  s.client_ = &client;
  s.last_active_ = loop_.time();
  auto [at_ip, added] = per_ip_.try_emplace(std::move(ip), 0);
  ++at_ip->second;
  s.ip_ = &*at_ip;

  std::string_view refused;
  if (!hello.nick.empty()) {
    refused = nick_error(hello.nick, limits_.max_nick);
    if (refused.empty() && (nicks_.contains(fold(hello.nick)) || claims_.contains(fold(hello.nick))))
      refused = "that nick is taken";
  }
  // Under a directory the wanted nick is claimed first: the client is a guest until the answer comes (set_nick).
  bool claim = dir_ && !hello.nick.empty() && refused.empty();
  s.nick_ = hello.nick.empty() || !refused.empty() || claim ? guest_name() : hello.nick;
  nicks_.insert(&s);
  log("connect " + s.nick_ + " from " + s.ip());

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
  if (claim) set_nick(s, hello.nick);
  return s;
}

void Hub::disconnect(Session& s, std::string_view reason) {
  if (!s.retired_) {
    if (!s.leave_reason_ && !reason.empty()) s.leave_reason_ = std::make_unique<std::string>(reason);
    retire(s);
  }
  std::erase(retiring_, &s);
  if (s.dirty_) std::erase(dirty_, &s);
  if (--s.ip_->second == 0) per_ip_.erase(per_ip_.find(s.ip_->first));
  auto slot = static_cast<std::uint32_t>(s.id_ & 0xffffffffu);
  sessions_[slot].reset();  // destroys s
  free_slots_.push_back(slot);
  --live_sessions_;
}

void Hub::retire(Session& s) {
  s.retired_ = true;
  log("leave " + s.nick_ + " #" + std::string(s.room()) + (s.leave_reason_ ? " (" + *s.leave_reason_ + ")" : ""));
  leave_room(s, s.leave_reason());
  auto it = nicks_.find(&s);
  if (it != nicks_.end() && *it == &s) {
    nicks_.erase(it);
    std::string key = fold(s.nick_);
    if (dir_ && !is_guest(key)) dir_->release(key);
  }
}

void Hub::kick(Session& s, std::string_view reason) {
  if (s.closing_) return;
  log("kick " + s.nick_ + " from " + s.ip() + ": " + std::string(reason));
  s.closing_ = true;
  s.leave_reason_ = std::make_unique<std::string>(reason);
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
  for (auto& s : sessions_) {
    if (!s || s->closing_) continue;
    send(*s, {.type = Type::error, .text = std::string(reason)});
    s->closing_ = true;  // everyone goes: broadcasts skip closing members, so nobody is told of the others leaving
    write_out(*s);
    s->client_->close();
  }
  dirty_.clear();
  for (auto& s : sessions_) {
    if (s) s->dirty_ = false;
  }
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
    log("warn " + s.nick_ + " from " + s.ip() + ": flooding");
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
    names_of(*s.room_, limits_.names_max, names);
    send(s, {.type = Type::members, .room = s.room(), .names = names, .count = s.room_->members.size()});
  } else if (name == "me") {
    if (arg.empty()) {
      send(s, {.type = Type::error, .text = "usage: /me TEXT"});
    } else {
      say(s, arg, true);
    }
  } else if (name == "msg") {
    private_message(s, arg);
  } else if (name == "quit") {
    s.leave_reason_ = std::make_unique<std::string>(arg.empty() ? "quit" : "quit: " + sanitize(arg));
    send(s, {.type = Type::notice, .text = "bye"});
    write_out(s);  // "bye" (and what was waiting) before the close
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
      std::string reason = why(error);
      hub.log("error: store refused a message of #" + room_name + ": " + reason);
      if (Session* s = hub.session(sender)) {
        hub.send(*s, {.type = Type::error, .text = "your message was not sent: the store failed (" + reason + ")"});
      }
      return;
    }
    hub.stored(std::move(stored));
  });
}

void Hub::stored(Message m) {
  if (bus_) bus_->publish(m);
  deliver(std::move(m));
}

// --- a room's order (one instance, or several sharing a store through a bus)

void Hub::deliver(Message m) {
  if (!m.to.empty()) {
    deliver_private(m);
    return;
  }
  if (m.room.empty()) return;
  Room& r = room(m.room);
  if (m.seq <= r.last_seq) return;  // delivered already: our own message back from the bus, or read back
  if (m.seq != r.last_seq + 1) {
    // One is missing (not heard of yet, or lost by the bus): it is in the store, committed before this one.
    std::string name = r.name;
    r.held.try_emplace(m.seq, std::move(m));
    fill(name);
    return;
  }
  accept(r, std::move(m));
  release_held(r);
}

void Hub::accept(Room& r, Message m) {
  r.last_seq = m.seq;
  r.last_id = m.id;
  broadcast(r, {.type = Type::message, .message = &m});
  if (limits_.history == 0) return;
  if (r.history.size() == limits_.history) r.history.pop_front();
  r.history.push_back(std::move(m));
}

void Hub::release_held(Room& r) {
  while (!r.held.empty()) {
    auto first = r.held.begin();
    if (first->first > r.last_seq + 1) break;
    Message m = std::move(first->second);
    r.held.erase(first);
    if (m.seq == r.last_seq + 1) accept(r, std::move(m));
  }
}

void Hub::fill(const std::string& name) {
  Room& r = room(name);
  if (r.filling) return;
  r.filling = true;
  constexpr std::size_t batch = 500;
  std::weak_ptr<Hub*> weak = self_;
  store_.messages_after(name, r.last_id, batch, [weak, name](std::vector<Message> got, std::exception_ptr error) {
    auto self = weak.lock();
    if (!self) return;
    Hub& hub = **self;
    Room& r = hub.room(name);
    r.filling = false;
    if (error) {
      // The store is away: try again shortly (what is held stays held, in order).
      hub.log("error: reading #" + name + "'s missed messages: " + why(error));
      hub.loop_.call_later(std::chrono::seconds(1), [weak, name] {
        if (auto self = weak.lock()) (*self)->fill(name);
      });
      return;
    }
    for (Message& m : got) {
      if (m.seq > r.last_seq) hub.accept(r, std::move(m));
    }
    hub.release_held(r);
    if (r.held.empty()) return;
    if (got.size() == batch) {
      hub.fill(name);
      return;
    }
    // The store has nothing between: messages that were never committed (cannot happen with a store that numbers
    // a room's messages as it commits them). Go on rather than wait for ever.
    hub.log("error: #" + name + " misses messages " + std::to_string(r.last_seq + 1) + " to " +
            std::to_string(r.held.begin()->first - 1) + " in the store");
    r.last_seq = r.held.begin()->first - 1;
    hub.release_held(r);
  });
}

void Hub::resync() {
  std::vector<std::string> names;
  names.reserve(rooms_.size());
  for (const auto& [name, r] : rooms_) names.push_back(name);
  for (const std::string& name : names) fill(name);
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
  auto claiming = claims_.find(key);
  if ((it != nicks_.end() && *it != &s) || (claiming != claims_.end() && claiming->second != s.id_)) {
    send(s, {.type = Type::error, .text = "the nick " + std::string(nick) + " is taken"});
    return;
  }
  if (nick == s.nick_ || claiming != claims_.end()) return;
  if (!dir_ || key == fold(s.nick_)) {
    rename(s, std::string(nick), std::move(key), true);
    return;
  }
  // Another instance may hold it: the directory answers, and the nick is this client's only then.
  claims_.emplace(key, s.id_);
  std::weak_ptr<Hub*> weak = self_;
  std::uint64_t sid = s.id_;
  dir_->claim(key, [weak, sid, key, wanted = std::string(nick)](bool ok, std::string error) {
    auto self = weak.lock();
    if (!self) return;
    Hub& hub = **self;
    hub.claims_.erase(key);
    Session* s = hub.session(sid);
    if (!s || s->closing_ || s->retired_ || !hub.dir_) {
      if (ok && hub.dir_) hub.dir_->release(key);
      return;
    }
    if (!ok) {
      hub.send(*s, {.type = Type::error,
                    .text = error.empty() ? "the nick " + wanted + " is taken"
                                          : "the nick " + wanted + " cannot be checked now (" + error + ")"});
      return;
    }
    hub.rename(*s, wanted, key, true);
  });
}

void Hub::rename(Session& s, std::string nick, std::string key, bool release_old) {
  // Out of the set under its old nick (the set finds a session by its nick), back in under the new one.
  if (auto it = nicks_.find(&s); it != nicks_.end() && *it == &s) nicks_.erase(it);
  std::string old_key = fold(s.nick_);
  if (dir_ && release_old && key != old_key && !is_guest(old_key)) dir_->release(old_key);
  std::string old = std::exchange(s.nick_, std::move(nick));
  nicks_.insert(&s);
  log("nick " + old + " -> " + s.nick_);
  send(s, {.type = Type::you_are, .nick = s.nick_});
  broadcast(*s.room_, {.type = Type::renamed, .room = s.room(), .nick = old, .other = s.nick_});
}

std::vector<std::string> Hub::claimed_nicks() const {
  std::vector<std::string> keys;
  for (const Session* s : nicks_) {
    std::string key = fold(s->nick_);
    if (!is_guest(key) && !s->retired_) keys.push_back(std::move(key));
  }
  return keys;
}

void Hub::nick_lost(std::string_view key) {
  auto it = nicks_.find(key);
  if (it == nicks_.end() || (*it)->closing_) return;
  Session& s = **it;
  log("nick " + s.nick_ + " was taken on another instance while the directory was away");
  send(s, {.type = Type::error,
           .text = "another instance gave the nick " + s.nick_ + " to someone else while they could not see yours"});
  std::string guest = guest_name();
  std::string guest_key = fold(guest);
  rename(s, std::move(guest), std::move(guest_key), false);
}

void Hub::deliver_private(const Message& m) {
  auto it = nicks_.find(std::string_view(m.to));
  if (it == nicks_.end() || (*it)->closing_) {
    log("a private message from " + m.nick + " to " + m.to + " came after they left");
    return;
  }
  send(**it, {.type = Type::private_in, .nick = m.nick, .text = m.text, .time_ms = m.time_ms});
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
  s.room_index_ = static_cast<std::uint32_t>(r.members.size());
  r.members.push_back(&s);
  log("join " + s.nick_ + " #" + r.name);
  if (r.members.size() <= limits_.announce_max) broadcast(r, {.type = Type::joined, .room = r.name, .nick = s.nick_});

  std::vector<std::string> names;
  names_of(r, limits_.names_on_join, names, &s);
  send(s, {.type = Type::members, .room = r.name, .names = names, .count = r.members.size()});

  // History: the last messages, or (a reconnecting page) those after the last id it saw: from the ring when it
  // holds all of them, else from the store.
  if (after_id && *after_id < r.last_id &&
      (r.history.empty() || (*after_id < r.history.front().id && r.history.front().seq != 1))) {
    catch_up(s, *after_id, 0);
    return;
  }
  replay(s, r, {}, after_id.value_or(0));
}

// Sends `older` (messages read from the store) and then the ring's messages after them (or after `after_id`).
void Hub::replay(Session& s, const Room& r, std::span<const Message> older, std::uint64_t after_id) {
  if (!older.empty()) after_id = older.back().id;
  auto from = std::upper_bound(r.history.begin(), r.history.end(), after_id,
                               [](std::uint64_t id, const Message& m) { return id < m.id; });
  std::size_t count = older.size() + static_cast<std::size_t>(r.history.end() - from);
  if (count == 0) return;
  send(s, {.type = Type::history, .room = r.name, .count = count});
  for (const Message& m : older) send(s, {.type = Type::message, .history = true, .message = &m});
  for (auto it = from; it != r.history.end(); ++it) send(s, {.type = Type::message, .history = true, .message = &*it});
}

void Hub::catch_up(Session& s, std::uint64_t after_id, int attempt) {
  s.catching_up_ = true;
  std::weak_ptr<Hub*> weak = self_;
  std::uint64_t sid = s.id_;
  std::string name = s.room_->name;
  store_.messages_after(
      name, after_id, limits_.max_catch_up,
      [weak, sid, name, after_id, attempt](std::vector<Message> got, std::exception_ptr error) {
        auto self = weak.lock();
        if (!self) return;
        Hub& hub = **self;
        Session* s = hub.session(sid);
        if (!s || !s->catching_up_ || s->room() != name) return;  // gone, or in another room since
        const Room& r = *s->room_;
        s->catching_up_ = false;
        if (error) {
          hub.log("error: reading #" + name + "'s history: " + why(error));
          hub.send(*s, {.type = Type::error, .text = "the older messages could not be read: " + why(error)});
          hub.replay(*s, r, {}, 0);
          return;
        }
        if (got.size() == hub.limits_.max_catch_up) {
          hub.send(
              *s, {.type = Type::notice,
                   .text = "you missed more than " + std::to_string(got.size()) + " messages; here are the last ones"});
          hub.replay(*s, r, {}, 0);
          return;
        }
        // The ring must take over right after what the store gave; if more messages came meanwhile than the ring
        // holds, read again.
        std::uint64_t last_id = got.empty() ? after_id : got.back().id;
        bool joined = r.history.empty() || r.history.front().id <= last_id || r.history.front().seq == 1 ||
                      (!got.empty() && r.history.front().seq == got.back().seq + 1);
        if (!joined && attempt < 3) {
          hub.catch_up(*s, after_id, attempt + 1);
          return;
        }
        hub.replay(*s, r, got, after_id);
      });
}

void Hub::leave_room(Session& s, std::string_view reason) {
  Room* r = std::exchange(s.room_, nullptr);
  s.catching_up_ = false;
  if (!r) return;
  // O(1) removal: the last member takes this one's place.
  Session* last = r->members.back();
  r->members[s.room_index_] = last;
  last->room_index_ = s.room_index_;
  r->members.pop_back();
  if (r->members.size() < limits_.announce_max) {
    broadcast(*r, {.type = Type::left, .room = r->name, .nick = s.nick_, .text = reason});
  }
  // A room is forgotten once nobody is in it and it never had a message (its place in the store's order, kept in
  // last_seq, must survive).
  if (r->members.empty() && r->last_seq == 0 && r->held.empty() && !r->filling && r->name != limits_.default_room)
    rooms_.erase(r->name);
}

// At most `max` names of `r`'s members (`first` among them when given), sorted: O(max), not O(members).
void Hub::names_of(const Room& r, std::size_t max, std::vector<std::string>& names, Session* first) const {
  std::size_t n = std::min(max, r.members.size());
  names.reserve(n);
  if (first && n > 0) names.push_back(first->nick_);
  for (std::size_t i = 0; i < r.members.size() && names.size() < n; ++i) {
    if (r.members[i] != first) names.push_back(r.members[i]->nick_);
  }
  std::sort(names.begin(), names.end());
}

void Hub::private_message(Session& s, std::string_view args) {
  std::size_t space = args.find_first_of(" \t");
  std::string_view to = args.substr(0, space);
  std::string_view text = space == std::string_view::npos ? std::string_view() : trim(args.substr(space));
  if (to.empty() || text.empty()) {
    send(s, {.type = Type::error, .text = "usage: /msg NICK TEXT"});
    return;
  }
  auto it = nicks_.find(to);
  bool here = it != nicks_.end() && !(*it)->closing_;
  // Elsewhere (under a directory): a name that could be a nick or a guest's, held by another instance perhaps.
  bool elsewhere = !here && dir_ && (nick_error(to, limits_.max_nick).empty() || is_guest(fold(to))) &&
                   room_error(to, limits_.max_nick).empty();
  if (!here && !elsewhere) {
    send(s, {.type = Type::error, .text = "nobody is called " + sanitize(to)});
    return;
  }
  // Stored first, like a room message: the recipient and the sender see it once the store has it. One on another
  // instance gets it from there once the directory handed it over; the sender is told it left then.
  Message m{.time_ms = now_ms(), .nick = s.nick_, .text = sanitize(text), .to = here ? (*it)->nick_ : std::string(to)};
  std::weak_ptr<Hub*> weak = self_;
  std::uint64_t sender = s.id_;
  std::uint64_t target = here ? (*it)->id_ : 0;
  store_.append(std::move(m), [weak, sender, target](Message stored, std::exception_ptr error) {
    auto self = weak.lock();
    if (!self) return;
    Hub& hub = **self;
    Session* from = hub.session(sender);
    if (error) {
      hub.log("error: store refused a private message: " + why(error));
      if (from) {
        hub.send(*from,
                 {.type = Type::error, .text = "your message was not sent: the store failed (" + why(error) + ")"});
      }
      return;
    }
    if (target == 0) {
      if (hub.dir_) {
        hub.route_private(sender, std::move(stored));
      } else if (from) {
        hub.send(*from, {.type = Type::error, .text = "nobody is called " + stored.to});
      }
      return;
    }
    Session* to = hub.session(target);
    if (to && !to->closing_) {
      hub.send(*to, {.type = Type::private_in, .nick = stored.nick, .text = stored.text, .time_ms = stored.time_ms});
    }
    if (!from) return;
    if (to && !to->closing_) {
      hub.send(*from, {.type = Type::private_out, .nick = to->nick_, .text = stored.text, .time_ms = stored.time_ms});
    } else {
      hub.send(*from, {.type = Type::error, .text = stored.to + " left before your message reached them"});
    }
  });
}

// The private message `m` (stored) to a member of another instance, through the directory.
void Hub::route_private(std::uint64_t sender, Message m) {
  std::weak_ptr<Hub*> weak = self_;
  dir_->route(m, [weak, sender, m](bool ok, std::string error) {
    auto self = weak.lock();
    if (!self) return;
    Hub& hub = **self;
    Session* from = hub.session(sender);
    if (!from) return;
    if (ok) {
      hub.send(*from, {.type = Type::private_out, .nick = m.to, .text = m.text, .time_ms = m.time_ms});
    } else if (error.empty()) {
      hub.send(*from, {.type = Type::error, .text = "nobody is called " + m.to});
    } else {
      hub.send(*from, {.type = Type::error,
                       .text = "your message to " + m.to +
                               " is stored but could not be handed "
                               "on (" +
                               error + ")"});
    }
  });
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
    if (m->closing_ || (m->catching_up_ && e.type == Type::message)) continue;
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
  // A member that gathered a quarter of its queue while waiting for its turn (a flood of long lines into a crowded
  // room) is written now: its waiting is the hub's doing, not a slow reader's, and must not get it disconnected.
  if (s.out_.size() >= limits_.max_queue / 4) write_out(s);
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
  // At most Limits::writes_per_pass members are written in one pass. Every room with members waiting gets its
  // share of those writes (at least one), its members taken in the order they were first sent something; what the
  // shares leave goes to the longest waiting, whatever their room. The others keep their place for the next pass,
  // and a member written now that is sent more meanwhile queues up again behind them. So a flood into a crowded room
  // costs each pass a bounded number of writes, never holds a member of another room beyond the next pass, and its
  // lines gather into fewer, larger writes the longer its round takes.
  ++flush_pass_;
  std::size_t rooms = 0;
  for (Session* s : dirty_) {
    Room* r = s->room_;
    if (r && r->flush_pass != flush_pass_) {
      r->flush_pass = flush_pass_;
      r->flush_writes = 0;
      ++rooms;
    }
  }
  const std::size_t budget = limits_.writes_per_pass;
  const std::size_t share = std::max<std::size_t>(1, budget / std::max<std::size_t>(1, rooms));
  std::size_t writes = 0;
  // By index, with the size taken now: a member queued while these writes run waits for the next pass.
  const std::size_t queued = dirty_.size();
  for (bool shares : {true, false}) {
    for (std::size_t i = 0; i < queued && writes < budget; ++i) {
      Session* s = dirty_[i];
      if (!s->dirty_) continue;
      if (shares && s->room_) {
        if (s->room_->flush_writes == share) continue;
        ++s->room_->flush_writes;
      }
      s->dirty_ = false;
      if (s->closing_ || s->out_.empty()) continue;
      write_out(*s);
      ++writes;
    }
  }
  std::erase_if(dirty_, [](const Session* s) { return !s->dirty_; });
  if (!dirty_.empty()) schedule_flush();
}

void Hub::write_out(Session& s) {
  if (s.out_.empty()) return;
  s.client_->write(s.out_);
  s.out_.clear();
  // A buffer above 512 bytes goes at once (a joiner's welcome, member list and history; a burst), so that only an
  // active member's usual pass stays allocated (given back by trim_buffers once the member is idle).
  if (s.out_.capacity() > 512) {
    flushed_free_ += s.out_.capacity();
    std::string().swap(s.out_);
  }
  s.wrote_ = true;
  if (!trim_armed_) {
    trim_armed_ = true;
    trim_timer_ = loop_.call_later(std::chrono::seconds(2), [this] { trim_buffers(); });
  }
}

// Every 2 s while members hold output buffers: a member that was written since the last trim keeps its buffer (an
// active member allocates nothing per pass), one that was not gives it back (an idle member holds no buffer).
void Hub::trim_buffers() {
  trim_armed_ = false;
  bool holding = false;
  std::size_t released = flushed_free_;
  for (auto& s : sessions_) {
    if (!s || s->out_.capacity() <= std::string().capacity() || !s->out_.empty()) continue;
    if (std::exchange(s->wrote_, false)) {
      holding = true;
    } else {
      released += s->out_.capacity();
      std::string().swap(s->out_);
    }
  }
  // glibc keeps freed blocks in its free lists: the pages that are now wholly free (these buffers and the welcomes
  // given back at their flush) go back to the system, after 256 KiB, or when the hub goes quiet (this is the last
  // trim of the period) with anything at all to give back: the end of a burst of joins leaves no freed pages behind.
  if (released >= 256 * 1024 || (!holding && released > 0)) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    released = 0;
  }
  flushed_free_ = released;
  if (holding) {
    trim_armed_ = true;
    trim_timer_ = loop_.call_later(std::chrono::seconds(2), [this] { trim_buffers(); });
  }
}

void Hub::sweep_idle() {
  tulipa::TimePoint now = loop_.time();
  std::vector<Session*> idle;
  for (auto& s : sessions_) {
    if (s && !s->closing_ && now - s->last_active_ >= limits_.idle) idle.push_back(s.get());
  }
  for (Session* s : idle) kick(*s, "idle for " + std::to_string(limits_.idle.count()) + " s");
  sweep_timer_ =
      loop_.call_later(std::max<tulipa::Duration>(std::chrono::seconds(1), limits_.idle / 8), [this] { sweep_idle(); });
}

}  // namespace chat
