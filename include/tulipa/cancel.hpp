// The exceptions of tulipa's coroutine layer: CancelledError, TimeoutError, InvalidStateError, ExceptionGroup.
//
// CancelledError deliberately does NOT derive from std::exception: asyncio moved CancelledError out of Exception
// (3.8) because `except Exception:` swallowed cancellations; in C++ the same trap is `catch (const std::exception&)`.
// Only `catch (const CancelledError&)` or `catch (...)` catches it, and catching it is how a task explicitly refuses a
// cancellation (call Task::uncancel() too, as asyncio asks).
#pragma once

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tulipa {

class CancelledError {
 public:
  CancelledError() = default;
  explicit CancelledError(std::string message) : message_(std::move(message)) {}
  // The message given to cancel(msg); empty when none was.
  const std::string& message() const noexcept { return message_; }
  const char* what() const noexcept { return message_.empty() ? "tulipa::CancelledError" : message_.c_str(); }

 private:
  std::string message_;
};

// Raised by timeout()/timeout_at() scopes and wait_for() when the deadline passed.
class TimeoutError : public std::runtime_error {
 public:
  TimeoutError() : std::runtime_error("timed out") {}
  explicit TimeoutError(const std::string& what) : std::runtime_error(what) {}
};

// An operation on a future in the wrong state: set_result on a done future, result() of a pending one...
class InvalidStateError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Several errors at once (Python's ExceptionGroup): what a TaskGroup raises when children failed.
// Holds the children's exceptions in completion order; none of them is a CancelledError.
class ExceptionGroup : public std::exception {
 public:
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions);
  const char* what() const noexcept override { return what_.c_str(); }
  const std::string& message() const noexcept { return message_; }
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }
  std::size_t size() const noexcept { return exceptions_.size(); }
  // True if one of the exceptions (looking inside nested groups) is an E.
  template <class E>
  bool contains() const {
    for (const auto& e : exceptions_) {
      try {
        std::rethrow_exception(e);
      } catch (const E&) {
        return true;
      } catch (const ExceptionGroup& g) {
        if (g.contains<E>()) return true;
      } catch (...) {
      }
    }
    return false;
  }

 private:
  std::string message_;
  std::vector<std::exception_ptr> exceptions_;
  std::string what_;  // "message (N sub-exceptions): first; second..."
};

// True if `e` holds a CancelledError.
bool is_cancelled_error(const std::exception_ptr& e) noexcept;
// A readable one-line description of any exception_ptr (its what(), or "unknown exception").
std::string describe_exception(const std::exception_ptr& e);

}  // namespace tulipa
