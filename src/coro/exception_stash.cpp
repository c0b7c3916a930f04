// The slot a failed coroutine leaves its exception in for the code that resumes right after it (see
// PromiseBase::unhandled_exception): the awaiting coroutine's await_resume, or the task's step for a root.
// Touched only when a coroutine ends with an exception.
#include <exception>
#include <utility>

#include "tulipa/coro.hpp"

namespace tulipa::detail {

namespace {
thread_local std::exception_ptr tls_stashed;
}

void stash_exception(std::exception_ptr e) noexcept { tls_stashed = std::move(e); }
std::exception_ptr take_stashed_exception() noexcept { return std::exchange(tls_stashed, nullptr); }

}  // namespace tulipa::detail
