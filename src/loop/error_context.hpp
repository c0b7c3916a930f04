// The one way the library builds an ErrorContext for the loop's exception handler (EventLoop::call_exception_handler):
// what failed, the exception being reported (null: none) and the file descriptor involved (-1: none). A task's name
// or where a callback was scheduled are set on the result where they are known. And the one way a default exception
// handler (the loop's, a ThreadPoolExecutor's) writes one down.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include "tulipa/loop.hpp"

namespace tulipa::detail {

inline ErrorContext error_context(std::string message, std::exception_ptr exception = nullptr, int fd = -1) {
  ErrorContext ctx;
  ctx.message = std::move(message);
  ctx.exception = std::move(exception);
  ctx.fd = fd;
  return ctx;
}

// The context as the default handlers report it: "<message>: <what()>", then the task, the fd and where the callback
// was scheduled, one per indented line, where known (asyncio's default_exception_handler's layout).
std::string describe(const ErrorContext& context);

}  // namespace tulipa::detail
