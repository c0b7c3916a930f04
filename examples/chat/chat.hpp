// The line chat: the seed's ChatProtocol, on tulipa's transports and protocols.
//
// Clients connect with nc or telnet, pick a nick with /nick NAME, and every line they type is sent to everyone
// else. Commands: /nick NAME, /who, /quit. Join, rename and leave notices go to all.
//
// Limits, so that one client cannot hurt the others:
// - a line longer than `max_line` bytes is refused with a message, and the rest of it (up to the next newline) is
//   skipped;
// - broadcasting never waits: each client's transport queues what its kernel buffer does not take, and a client
//   whose queue passes `max_queue` (it stopped reading) is disconnected, so it costs the others nothing.
//
// Header-only so that tests/chat_test.cpp runs the same code in-process.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tulipa/net.hpp"

namespace chat {

struct ChatOptions {
  std::size_t max_line = 4096;        // bytes, without the newline
  std::size_t max_queue = 256 * 1024;  // bytes queued for one client before it is dropped as too slow
  std::size_t max_nick = 32;
};

class ChatProtocol;

// The room: who is connected, and the broadcast. Owned by the program; outlives its connections' protocols only
// as long as the server runs (close the server and its clients before destroying the room).
class ChatRoom {
 public:
  explicit ChatRoom(ChatOptions options = {}) : options_(options) {}
  const ChatOptions& options() const noexcept { return options_; }

  tulipa::ProtocolFactory factory();

  // Sends `line` (with its newline) to every member that has a nick, except `from`.
  void broadcast(std::string_view line, const ChatProtocol* from);
  bool nick_taken(std::string_view nick) const;
  std::string who() const;
  void join(ChatProtocol* p) { members_.push_back(p); }
  void leave(ChatProtocol* p) { members_.erase(std::remove(members_.begin(), members_.end(), p), members_.end()); }
  std::size_t size() const noexcept { return members_.size(); }

 private:
  ChatOptions options_;
  std::vector<ChatProtocol*> members_;
};

class ChatProtocol final : public tulipa::Protocol {
 public:
  explicit ChatProtocol(ChatRoom& room) : room_(room) {}

  void connection_made(tulipa::Transport& t) override {
    transport_ = &t;
    room_.join(this);
    send("* welcome to tulipa chat; pick a nick with /nick NAME (then /who, /quit)\n");
  }

  void data_received(std::span<const std::byte> data) override {
    std::string_view in(reinterpret_cast<const char*>(data.data()), data.size());
    while (!in.empty() && transport_ && !transport_->is_closing()) {
      std::size_t nl = in.find('\n');
      std::string_view piece = in.substr(0, nl);
      if (skipping_) {
        // The tail of a refused line: drop it up to its newline.
        if (nl == std::string_view::npos) return;
        skipping_ = false;
      } else if (partial_.size() + piece.size() > room_.options().max_line + (nl == std::string_view::npos ? 0 : 1)) {
        // +1 above: a line may end in "\r\n"; the \r is not counted.
        partial_.clear();
        partial_.shrink_to_fit();
        send("* line too long (more than " + std::to_string(room_.options().max_line) + " bytes); refused\n");
        if (nl == std::string_view::npos) {
          skipping_ = true;
          return;
        }
      } else if (nl == std::string_view::npos) {
        partial_.append(piece);  // only a connection in the middle of a line holds a buffer
        return;
      } else {
        partial_.append(piece);
        std::string line = std::move(partial_);
        partial_ = std::string();
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.size() > room_.options().max_line) {
          send("* line too long (more than " + std::to_string(room_.options().max_line) + " bytes); refused\n");
        } else {
          handle_line(line);
        }
      }
      in.remove_prefix(nl + 1);
    }
  }

  void connection_lost(std::exception_ptr) override {
    room_.leave(this);
    if (!nick_.empty()) room_.broadcast("* " + nick_ + " left" + (too_slow_ ? " (too slow)" : "") + "\n", this);
    transport_ = nullptr;
  }

  const std::string& nick() const noexcept { return nick_; }

  // Queues `text` for this client; a client that lets its queue grow past the bound is dropped.
  void send(std::string_view text) {
    if (!transport_ || transport_->is_closing()) return;
    transport_->write(text);
    if (transport_->get_write_buffer_size() > room_.options().max_queue) {
      too_slow_ = true;
      transport_->abort();
    }
  }

 private:
  void handle_line(std::string_view line) {
    if (line.starts_with("/")) {
      command(line);
      return;
    }
    if (nick_.empty()) {
      send("* pick a nick first: /nick NAME\n");
      return;
    }
    if (line.empty()) return;
    std::string out;
    out.reserve(nick_.size() + line.size() + 4);
    out.append("<").append(nick_).append("> ").append(line).append("\n");
    room_.broadcast(out, this);
  }

  void command(std::string_view line) {
    std::string_view cmd = line.substr(0, line.find(' '));
    std::string_view arg = cmd.size() < line.size() ? line.substr(cmd.size() + 1) : std::string_view();
    while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
    while (!arg.empty() && arg.back() == ' ') arg.remove_suffix(1);
    if (cmd == "/nick") {
      set_nick(arg);
    } else if (cmd == "/who") {
      send("* online: " + room_.who() + "\n");
    } else if (cmd == "/quit") {
      send("* bye\n");
      transport_->close();  // flushes "bye", then connection_lost tells the others
    } else {
      send("* unknown command " + std::string(cmd) + " (try /nick NAME, /who, /quit)\n");
    }
  }

  void set_nick(std::string_view nick) {
    auto valid_char = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    };
    if (nick.empty() || nick.size() > room_.options().max_nick || !std::all_of(nick.begin(), nick.end(), valid_char)) {
      send("* a nick is 1 to " + std::to_string(room_.options().max_nick) + " letters, digits, _ or -\n");
      return;
    }
    if (nick == nick_) return;
    if (room_.nick_taken(nick)) {
      send("* nick " + std::string(nick) + " is taken\n");
      return;
    }
    std::string old = std::exchange(nick_, std::string(nick));
    send("* you are " + nick_ + "\n");
    room_.broadcast(old.empty() ? "* " + nick_ + " joined\n" : "* " + old + " is now " + nick_ + "\n", this);
  }

  ChatRoom& room_;
  tulipa::Transport* transport_ = nullptr;
  std::string nick_;
  std::string partial_;
  bool skipping_ = false;
  bool too_slow_ = false;
};

inline tulipa::ProtocolFactory ChatRoom::factory() {
  return [this] { return std::make_unique<ChatProtocol>(*this); };
}

inline void ChatRoom::broadcast(std::string_view line, const ChatProtocol* from) {
  // send() may drop a slow member (abort): that only schedules its connection_lost, so members_ does not change
  // while we iterate.
  for (ChatProtocol* m : members_) {
    if (m != from && !m->nick().empty()) m->send(line);
  }
}

inline bool ChatRoom::nick_taken(std::string_view nick) const {
  return std::any_of(members_.begin(), members_.end(), [&](const ChatProtocol* m) { return m->nick() == nick; });
}

inline std::string ChatRoom::who() const {
  std::vector<std::string> nicks;
  for (const ChatProtocol* m : members_) {
    if (!m->nick().empty()) nicks.push_back(m->nick());
  }
  std::sort(nicks.begin(), nicks.end());
  std::string out;
  for (const auto& n : nicks) out += (out.empty() ? "" : ", ") + n;
  std::size_t anonymous = members_.size() - nicks.size();
  if (anonymous > 0) out += (out.empty() ? "" : ", ") + std::to_string(anonymous) + " without a nick";
  return out.empty() ? "nobody" : out;
}

}  // namespace chat
