#include "postgres/errors.hpp"

#include <cstdlib>

#include "tulipa/postgres/error.hpp"

namespace tulipa::postgres {

namespace {
std::string describe(const Error::Fields& f) {
  std::string s = f.severity.empty() ? "ERROR" : f.severity;
  if (!f.sqlstate.empty()) s += " " + f.sqlstate;
  s += ": " + f.message;
  if (!f.detail.empty()) s += " (" + f.detail + ")";
  if (f.position > 0) s += " at character " + std::to_string(f.position);
  return s;
}
}  // namespace

Error::Error(Fields f) : std::runtime_error(describe(f)), f_(std::move(f)) {}

namespace detail {

std::string error_message(const PGconn* pg) {
  std::string m = pg ? PQerrorMessage(pg) : "out of memory";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

std::string result_message(const PGresult* r) {
  std::string m = PQresultErrorMessage(r);
  while (!m.empty() && m.back() == '\n') m.pop_back();
  return m;
}

void throw_result_error(const PGresult* r) {
  auto field = [r](int code) {
    const char* v = PQresultErrorField(r, code);
    return std::string(v ? v : "");
  };
  Error::Fields f;
  f.severity = field(PG_DIAG_SEVERITY_NONLOCALIZED);
  if (f.severity.empty()) f.severity = field(PG_DIAG_SEVERITY);
  f.sqlstate = field(PG_DIAG_SQLSTATE);
  f.message = field(PG_DIAG_MESSAGE_PRIMARY);
  if (f.message.empty()) f.message = result_message(r);
  f.detail = field(PG_DIAG_MESSAGE_DETAIL);
  f.hint = field(PG_DIAG_MESSAGE_HINT);
  f.position = std::atoi(field(PG_DIAG_STATEMENT_POSITION).c_str());
  throw Error(std::move(f));
}

}  // namespace detail
}  // namespace tulipa::postgres
