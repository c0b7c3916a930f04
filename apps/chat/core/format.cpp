#include "format.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace chat {

std::string clock_time(std::int64_t time_ms) {
  std::time_t t = static_cast<std::time_t>(time_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

void format_line(const Event& e, std::string& out) {
  using T = Event::Type;
  switch (e.type) {
    case T::message: {
      const Message& m = *e.message;
      out += clock_time(m.time_ms);
      out += " #";
      out += m.room;
      if (m.action) {
        out += " * ";
        out += m.nick;
        out += ' ';
      } else {
        out += " <";
        out += m.nick;
        out += "> ";
      }
      out += m.text;
      break;
    }
    case T::notice:
      out += "* ";
      out += e.text;
      break;
    case T::error:
      out += "! ";
      out += e.text;
      break;
    case T::you_are:
      out += "* you are ";
      out += e.nick;
      break;
    case T::joined:
      out += "* ";
      out += e.nick;
      out += " joined #";
      out += e.room;
      break;
    case T::left:
      out += "* ";
      out += e.nick;
      out += " left #";
      out += e.room;
      if (!e.text.empty()) {
        out += " (";
        out += e.text;
        out += ')';
      }
      break;
    case T::renamed:
      out += "* ";
      out += e.nick;
      out += " is now ";
      out += e.other;
      break;
    case T::members: {
      out += "* in #";
      out += e.room;
      if (e.count > e.names.size()) {
        out += " (";
        out += std::to_string(e.count);
        out += ')';
      }
      out += ": ";
      bool first = true;
      for (const std::string& n : e.names) {
        if (!first) out += ", ";
        first = false;
        out += n;
      }
      if (e.count > e.names.size()) {
        out += " and ";
        out += std::to_string(e.count - e.names.size());
        out += " more";
      }
      break;
    }
    case T::rooms: {
      out += "* rooms:";
      for (const RoomInfo& r : e.rooms) {
        out += " #";
        out += r.name;
        out += " (";
        out += std::to_string(r.members);
        out += ')';
      }
      break;
    }
    case T::private_in:
    case T::private_out:
      out += clock_time(e.time_ms);
      out += e.type == T::private_in ? " [" : " [you -> ";
      out += e.nick;
      out += e.type == T::private_in ? " -> you] " : "] ";
      out += e.text;
      break;
    case T::history:
      out += "* the last ";
      out += std::to_string(e.count);
      out += e.count == 1 ? " message of #" : " messages of #";
      out += e.room;
      out += ':';
      break;
  }
  out += '\n';
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

namespace {

const char* type_name(Event::Type t) {
  using T = Event::Type;
  switch (t) {
    case T::message:
      return "message";
    case T::notice:
      return "notice";
    case T::error:
      return "error";
    case T::you_are:
      return "you_are";
    case T::joined:
      return "joined";
    case T::left:
      return "left";
    case T::renamed:
      return "renamed";
    case T::members:
      return "members";
    case T::rooms:
      return "rooms";
    case T::private_in:
      return "private_in";
    case T::private_out:
      return "private_out";
    case T::history:
      return "history";
  }
  return "notice";
}

void field(std::string& out, const char* name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  append_json_string(out, value);
}

}  // namespace

void format_json(const Event& e, std::string& out) {
  using T = Event::Type;
  out += "{\"type\":\"";
  out += type_name(e.type);
  out += '"';
  switch (e.type) {
    case T::message: {
      const Message& m = *e.message;
      out += ",\"id\":" + std::to_string(m.id) + ",\"time\":" + std::to_string(m.time_ms);
      field(out, "room", m.room);
      field(out, "nick", m.nick);
      field(out, "text", m.text);
      out += m.action ? ",\"action\":true" : ",\"action\":false";
      out += e.history ? ",\"history\":true" : ",\"history\":false";
      break;
    }
    case T::members:
      field(out, "room", e.room);
      out += ",\"names\":[";
      for (std::size_t i = 0; i < e.names.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, e.names[i]);
      }
      out += "],\"count\":" + std::to_string(std::max(e.count, e.names.size()));
      break;
    case T::rooms:
      out += ",\"rooms\":[";
      for (std::size_t i = 0; i < e.rooms.size(); ++i) {
        if (i) out += ',';
        out += "{\"name\":";
        append_json_string(out, e.rooms[i].name);
        out += ",\"members\":" + std::to_string(e.rooms[i].members) + "}";
      }
      out += ']';
      break;
    case T::history:
      field(out, "room", e.room);
      out += ",\"count\":" + std::to_string(e.count);
      break;
    default:
      if (!e.room.empty()) field(out, "room", e.room);
      if (!e.nick.empty()) field(out, "nick", e.nick);
      if (!e.other.empty()) field(out, "other", e.other);
      if (!e.text.empty()) field(out, "text", e.text);
      if (e.time_ms) out += ",\"time\":" + std::to_string(e.time_ms);
      break;
  }
  out += "}\n";  // a batch of events is one WebSocket message of JSON lines (strings escape newlines)
}

}  // namespace chat
