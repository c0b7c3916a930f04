// Argument checks and errors shared by the selector backends, so that every backend rejects bad input the same way.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

#include "tulipa/selector.hpp"

namespace tulipa::detail {

// A registration must ask for something: an empty interest would make an fd that can never be reported.
inline void check_events(Events events, const char* operation) {
  if (events == Events::none || (std::uint32_t(events) & ~std::uint32_t(Events::read_write)) != 0) {
    throw std::invalid_argument(std::string(operation) + ": events must be read, write or read_write (got " +
                                std::to_string(std::uint32_t(events)) + ")");
  }
}

[[noreturn]] inline void throw_selector_error(int err, std::string_view backend, const char* operation, int fd) {
  throw std::system_error(err, std::system_category(),
                          std::string(backend) + " selector: " + operation + " fd " + std::to_string(fd));
}

}  // namespace tulipa::detail
