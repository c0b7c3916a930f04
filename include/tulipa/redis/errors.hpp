// The errors of tulipa::redis. Every one is a redis::Error (a std::runtime_error), so `catch (const redis::Error&)`
// catches what the client throws, and nothing else.
//
//   ServerError      the server answered with an error reply; what() is the server's message, word for word
//                    ("WRONGTYPE Operation against a key holding the wrong kind of value"); code() its first word.
//   ConnectionError  no connection (refused, reset, closed, lost while the command was in flight). The command
//                    may or may not have run on the server when it was in flight.
//   TimeoutError     a ConnectionError: connecting, or waiting for a reply, took longer than the configured
//                    timeout; the connection was closed (its stream state is unknown).
//   ProtocolError    the bytes from the server are not RESP (or exceed a limit): the connection was closed.
//   ReplyTypeError   a typed helper got a reply of another type than the command's (the stream is fine).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace tulipa::redis {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ServerError : public Error {
 public:
  explicit ServerError(std::string_view message) : Error(std::string(message)) {}
  // The error's code: its first word ("ERR", "WRONGTYPE", "NOAUTH", "WRONGPASS", "NOPERM", ...).
  std::string_view code() const noexcept {
    std::string_view m(what());
    return m.substr(0, m.find(' '));
  }
};

class ConnectionError : public Error {
 public:
  using Error::Error;
};

class TimeoutError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};

class ProtocolError : public Error {
 public:
  using Error::Error;
};

class ReplyTypeError : public Error {
 public:
  using Error::Error;
};

}  // namespace tulipa::redis
