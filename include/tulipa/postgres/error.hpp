// The errors of tulipa::postgres.
//   Error           the server refused a statement: SQLSTATE, message, detail, hint, position (PostgreSQL's fields)
//   ConnectionError connecting failed (refused, wrong password, timeout) or the connection was lost or closed
//   QueryTimeout    a query ran past its deadline (ConnectOptions::query_timeout); also a tulipa::TimeoutError
#pragma once

#include <stdexcept>
#include <string>

#include "tulipa/cancel.hpp"

namespace tulipa::postgres {

class Error : public std::runtime_error {
 public:
  struct Fields {
    std::string severity{};  // ERROR, FATAL, PANIC
    std::string sqlstate{};  // five characters: "23505" unique_violation, "42P01" undefined_table, "57014" canceled...
    std::string message{};   // the primary message
    std::string detail{};    // may be empty
    std::string hint{};      // may be empty
    int position = 0;        // 1-based character position in the statement's text, 0 when none
  };
  explicit Error(Fields f);
  const std::string& severity() const noexcept { return f_.severity; }
  const std::string& sqlstate() const noexcept { return f_.sqlstate; }
  const std::string& message() const noexcept { return f_.message; }
  const std::string& detail() const noexcept { return f_.detail; }
  const std::string& hint() const noexcept { return f_.hint; }
  int position() const noexcept { return f_.position; }

 private:
  Fields f_;
};

class ConnectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class QueryTimeout : public TimeoutError {
 public:
  using TimeoutError::TimeoutError;
};

}  // namespace tulipa::postgres
