// libpq's errors as tulipa::postgres exceptions (private).
#pragma once

#include <libpq-fe.h>

#include <string>

namespace tulipa::postgres::detail {

// PQerrorMessage without its trailing newline.
std::string error_message(const PGconn* pg);
// A failed result's message, for logs.
std::string result_message(const PGresult* r);
// Throws Error with the result's SQLSTATE, message, detail, hint and position.
[[noreturn]] void throw_result_error(const PGresult* r);

}  // namespace tulipa::postgres::detail
