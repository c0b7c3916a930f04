// The chat itself: members, rooms, commands, history, limits. It knows nothing of sockets: a connection
// (tcp/, web/) implements Client, calls connect() when it comes, receive() for each line (after pace()), and
// disconnect() when it ends; the hub answers through Client::write, at most once per member and loop pass.
//
// Costs (so that one client cannot make the server slow for the others):
// - a message, a join, a leave and a rename cost O(members of the room): each member's text is formatted once per
//   wire format and appended to the member's pending output; /who is O(members), /nick's uniqueness check O(1)
//   (a map of folded nicks). Rooms above Limits::announce_max members announce no joins and leaves, and a joiner
//   is sent Limits::names_on_join names and the room's size: filling a room of n costs O(n) bytes, not O(n^2);
// - what a member is sent leaves in one write, from a flush scheduled once per pass; a pass writes at most
//   Limits::writes_per_pass members, each room with members waiting getting its share, so that a flood into a
//   crowded room costs each pass a bounded number of writes and never holds a member of another room beyond the
//   next pass (meanwhile the flood's lines gather into fewer, larger writes; a member that gathers a quarter of
//   Limits::max_queue while it waits is written at once); a member that was sent nothing for a
//   trim period (Hub::trim_buffers) gives its output buffer back, so an idle member holds none;
// - a member whose unsent bytes pass Limits::max_queue is disconnected ("too slow"), so a reader that stops
//   reading costs the others nothing; a sender faster than the flood limits waits (pace), is warned, then is
//   disconnected ("flooding").
// Threads: the loop's thread only. Lifetime: the hub must outlive the connections (they hold Session&) and the
// store's pending appends (flush the store before destroying the hub).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bus.hpp"
#include "client.hpp"
#include "directory.hpp"
#include "flood_gate.hpp"
#include "store.hpp"
#include "tulipa/handle.hpp"
#include "tulipa/loop.hpp"

namespace chat {

struct Limits {
  std::size_t history = 50;         // messages of a room replayed on join (and kept in memory per room)
  std::size_t max_catch_up = 1000;  // messages replayed to a reconnecting page from the store, beyond the above
  std::size_t max_line = 2048;      // bytes of one line (or WebSocket message) from a client
  std::size_t max_nick = 24;
  std::size_t max_room = 32;
  std::size_t max_queue = 256 * 1024;  // bytes waiting for one client before it is disconnected as too slow
  std::size_t max_clients = 20000;
  std::size_t max_per_ip = 256;
  // A room with more members than this does not announce joins and leaves: in a crowd they are noise, and each
  // would cost O(members) bytes, O(n^2) while the room fills up.
  std::size_t announce_max = 100;
  std::size_t names_on_join = 100;  // names a joiner is sent (with the room's size); /who sends up to names_max
  std::size_t names_max = 1000;
  std::chrono::seconds idle{900};      // a client that sends nothing for this long is disconnected; 0: never
  double flood_rate = 5;               // lines per second, sustained
  double flood_burst = 20;             // lines at once
  std::size_t flood_line_bytes = 160;  // bytes that count as one line (a longer line costs its size in lines)
  unsigned flood_warn = 20;     // lines (tokens: a long line counts as several) that had to wait since the sender last
                                // paused, before a warning
  unsigned flood_kick = 60;     // ... and before disconnection
  unsigned lines_per_pass = 8;  // lines of one client handled before the others get their turn
  // Members written in one pass (each gets one write of all it was sent since its last one), shared between the
  // rooms with members waiting; the others wait for the next pass (Hub::flush).
  std::size_t writes_per_pass = 64;
  std::chrono::seconds close_grace{2};  // how long a closed connection may take to flush before it is cut off
  std::string default_room = "lobby";
};

class Hub;
struct Room;

// One connected client, as the hub sees it. Owned by the hub from connect() to disconnect().
class Session {
 public:
  const std::string& nick() const noexcept { return nick_; }
  // The room's name (folded, without '#').
  std::string_view room() const noexcept;
  // The client's address (the hub's count of connections per address holds the string).
  const std::string& ip() const noexcept { return ip_->first; }
  // The hub is ending this connection (kicked, quit, shutdown): stop handing it lines.
  bool closing() const noexcept { return closing_; }
  // Bytes waiting for the next flush.
  std::size_t pending_bytes() const noexcept { return out_.size(); }
  // Bytes of the output buffer's heap block (0 while it is inside the string: an idle member after Hub's trim).
  std::size_t held_bytes() const noexcept { return out_.capacity() > std::string().capacity() ? out_.capacity() : 0; }

 private:
  friend class Hub;
  std::string_view leave_reason() const noexcept { return leave_reason_ ? *leave_reason_ : std::string_view(); }

  // Laid out for the idle budget (every connected client holds one; 160 bytes with libstdc++, hub.cpp checks it): what
  // most members never use (a leave reason) is a pointer, the address is the per-address count's key.
  std::uint64_t id_ = 0;  // its slot in Hub::sessions_ (low 32 bits) and a number never reused (high 32 bits)
  Client* client_ = nullptr;
  std::string nick_;
  std::pair<const std::string, std::size_t>* ip_ = nullptr;  // its entry in Hub::per_ip_
  Room* room_ = nullptr;
  std::string out_;  // formatted events waiting for this pass's flush
  std::unique_ptr<std::string> leave_reason_;
  FloodGate gate_;
  tulipa::TimePoint last_active_{};
  std::uint32_t room_index_ = 0;  // position in room_->members
  bool dirty_ = false;            // in Hub::dirty_
  bool wrote_ = false;            // flushed since the last trim: keeps its output buffer one more period
  bool closing_ = false;
  bool retired_ = false;  // out of its room, its nick released
  // Its history is being read from the store (Hub::catch_up): the room's messages meanwhile reach it from the
  // room's ring, in order, once the older ones were sent.
  bool catching_up_ = false;
};

struct Room {
  std::string name;  // folded, without '#'
  std::vector<Session*> members;
  std::deque<Message> history;  // the last Limits::history messages, oldest first
  // The last message delivered (its seq and id; 0: none yet). A message from the bus whose seq is not the next
  // waits in `held` while the missing ones are read from the store (`filling`).
  std::uint64_t last_seq = 0;
  std::uint64_t last_id = 0;
  std::map<std::uint64_t, Message> held;  // by seq
  bool filling = false;
  // Hub::flush's tally of the room's members written in its current pass.
  std::uint64_t flush_pass = 0;
  std::size_t flush_writes = 0;
};

// What a reconnecting client asks for (the web page): its previous nick and room, and the last message id it saw,
// so that only what it missed is replayed.
struct Hello {
  std::string nick{};
  std::string room{};
  std::optional<std::uint64_t> after_id{};
};

class Hub {
 public:
  using LogSink = std::function<void(std::string_view line)>;
  // Writes "2026-12-03T09:53:10.123Z line" to stderr.
  static void log_to_stderr(std::string_view line);

  Hub(tulipa::EventLoop& loop, Store& store, Limits limits, LogSink log = log_to_stderr);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Fills each room's history from the store (at start, before serving).
  tulipa::Coro<void> load_history();
  // Scale-out (--redis): `bus` gets every message this hub stored; it hands the other instances' messages to
  // deliver() and calls resync() after it may have missed some. Null: a single instance. The bus must outlive
  // the hub's use of it (set_bus(nullptr) first).
  void set_bus(Bus* bus) noexcept { bus_ = bus; }
  // Scale-out: nicks unique across instances and private messages to any of them (core/directory.hpp). Set before
  // the first connection (guest names come from it); null: this hub's nicks are its own. Same lifetime rule as the
  // bus.
  void set_directory(Directory* directory) noexcept { dir_ = directory; }
  // The folded nicks this hub holds that a directory must know of (every one but the guests'): the directory claims
  // them again after it lost them (Redis restarted empty).
  std::vector<std::string> claimed_nicks() const;
  // The directory found `key` held by another instance when it claimed it again (it was free for a while): the
  // session called so here is told and becomes a guest.
  void nick_lost(std::string_view key);
  // A stored room message, from this instance or another: broadcast to the room's members in seq order, once
  // (a seq already delivered is dropped; one past a gap waits while the gap is read from the store). A private
  // message (`to` set) from another instance goes to the member called `to`, if it is still here.
  void deliver(Message m);
  // Reads back, for every room, what may have been missed (the bus lost its connection for a while).
  void resync();

  // Before connect(): the reason a new connection from `ip` is refused (too many), or nullopt.
  std::optional<std::string> admit(std::string_view ip) const;
  // A client connected: it gets a guest name (or hello.nick when free) and joins the default room (or hello.room).
  Session& connect(Client& client, std::string ip, const Hello& hello = {});
  // Flood control, before each line of `bytes` bytes: how long the line must wait (zero: handle it now). Warns,
  // and past the limit disconnects the sender (then closing() is true and the line is to be dropped). Lines and
  // bytes both count (FloodGate): a line costs one token or bytes / Limits::flood_line_bytes, whichever is more.
  tulipa::Duration pace(Session& s, std::size_t bytes);
  // One line (without its newline), or one WebSocket message: a command or something to say.
  void receive(Session& s, std::string_view line);
  // The client sent a line longer than Limits::max_line (it was dropped).
  void line_too_long(Session& s);
  // The connection ended; `s` is destroyed here. `reason`: what the room is told ("" for a plain leave).
  void disconnect(Session& s, std::string_view reason = {});
  // Ends a connection for a reason the client is told first ("flooding", "idle for 900 s").
  void kick(Session& s, std::string_view reason);
  // Tells every client `reason` and closes them (SIGTERM); no new connections are expected after it.
  void shutdown(std::string_view reason);
  // Writes the pending output of at most Limits::writes_per_pass members, each room its share, the longest waiting
  // first (scheduled by itself once per pass while some wait; tests may call it).
  void flush();

  std::size_t clients() const noexcept { return live_sessions_; }
  const Limits& limits() const noexcept { return limits_; }
  // The room `name` (folded, without '#'), or null.
  const Room* find_room(std::string_view name) const;

 private:
  Room& room(std::string_view folded);
  void command(Session& s, std::string_view line);
  void say(Session& s, std::string_view text, bool action);
  void set_nick(Session& s, std::string_view nick);
  void rename(Session& s, std::string nick, std::string key, bool release_old);
  void deliver_private(const Message& m);
  void join(Session& s, std::string_view room, std::optional<std::uint64_t> after_id = {});
  void enter(Session& s, Room& r, std::optional<std::uint64_t> after_id);
  void leave_room(Session& s, std::string_view reason);
  void private_message(Session& s, std::string_view args);
  void stored(Message m);
  void accept(Room& r, Message m);
  void release_held(Room& r);
  void fill(const std::string& room);
  void catch_up(Session& s, std::uint64_t after_id, int attempt);
  void replay(Session& s, const Room& r, std::span<const Message> older, std::uint64_t after_id);
  void route_private(std::uint64_t sender, Message m);
  Session* session(std::uint64_t id) const;
  static std::string why(std::exception_ptr error);
  void retire(Session& s);
  std::string guest_name();

  void send(Session& s, const Event& e);
  void broadcast(Room& r, const Event& e);
  void enqueue(Session& s, std::string_view bytes);
  void write_out(Session& s);
  void mark_dirty(Session& s);
  void schedule_flush();
  void sweep_idle();
  void trim_buffers();
  void names_of(const Room& r, std::size_t max, std::vector<std::string>& names, Session* first = nullptr) const;
  void log(std::string_view what);
  std::int64_t now_ms() const;

  tulipa::EventLoop& loop_;
  Store& store_;
  Bus* bus_ = nullptr;
  Directory* dir_ = nullptr;
  Limits limits_;
  LogSink log_;
  // Flat storage of the sessions by slot (a Session's id names its slot): 8 bytes a client, where a hash map's node
  // cost 40. Free slots are reused (free_slots_); the id's high half tells a reused slot's new session apart.
  std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<std::uint32_t> free_slots_;
  std::size_t live_sessions_ = 0;
  // The members by nick, case-insensitively (nicks are ASCII): a set of the sessions themselves, so that neither the
  // set's node (32 bytes) nor the session holds a folded copy of each nick. Looked up by any spelling of a nick.
  struct NickHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view nick) const noexcept;
    std::size_t operator()(const Session* s) const noexcept { return (*this)(s->nick()); }
  };
  struct NickEq {
    using is_transparent = void;
    static std::string_view key(std::string_view nick) noexcept { return nick; }
    static std::string_view key(const Session* s) noexcept { return s->nick(); }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      return same_nick(key(a), key(b));
    }
    static bool same_nick(std::string_view a, std::string_view b) noexcept;
  };
  std::unordered_set<Session*, NickHash, NickEq> nicks_;
  // Nicks being claimed from the directory (folded nick -> session id): taken here until the answer comes.
  std::unordered_map<std::string, std::uint64_t> claims_;
  std::unordered_map<std::string, Room> rooms_;  // by folded name (node-based: Room& stays valid)
  std::unordered_map<std::string, std::size_t> per_ip_;
  std::vector<Session*> dirty_;     // members with pending output, in the order they were first sent it
  std::vector<Session*> retiring_;  // kicked members to take out of their rooms at the next flush
  std::uint64_t next_session_ = 1;
  std::uint64_t next_guest_ = 1;
  std::uint64_t flush_pass_ = 0;  // flushes so far (Room::flush_pass)
  bool flush_scheduled_ = false;
  bool trim_armed_ = false;
  bool shutting_down_ = false;
  tulipa::Handle flush_handle_;
  tulipa::TimerHandle sweep_timer_;
  tulipa::TimerHandle trim_timer_;
  // Bytes of output buffers given back at their flush since the last trim_buffers (joiners' welcomes): counted
  // with the trimmed ones, so that the heap's pages they leave free go back too (a connect burst of 10,000 left
  // about 260 bytes a client resident in freed blocks between the sessions).
  std::size_t flushed_free_ = 0;
  // Store callbacks may come after the hub is gone (a store that outlives it): they hold this weakly.
  std::shared_ptr<Hub*> self_;
};

}  // namespace chat
