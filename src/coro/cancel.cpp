// The coroutine layer's exceptions.
#include "tulipa/cancel.hpp"

#include <typeinfo>

namespace tulipa {

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions)
    : message_(std::move(message)), exceptions_(std::move(exceptions)) {
  what_ = message_ + " (" + std::to_string(exceptions_.size()) + " sub-exception" +
          (exceptions_.size() == 1 ? "" : "s") + ")";
  const char* sep = ": ";
  for (const auto& e : exceptions_) {
    what_ += sep;
    what_ += describe_exception(e);
    sep = "; ";
  }
}

bool is_cancelled_error(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError& c) {
    return std::string("CancelledError") + (c.message().empty() ? "" : ": " + c.message());
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace tulipa
