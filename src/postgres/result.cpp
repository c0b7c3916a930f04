// Result, Row and the binary decoders (types.hpp).
#include <libpq-fe.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include "tulipa/postgres/result.hpp"

namespace tulipa::postgres {

namespace detail {
namespace {

[[noreturn]] void mismatch(const Field& f, const char* target) {
  throw DecodeError("postgres: column " + std::to_string(f.column) + " (type oid " + std::to_string(f.type) +
                    ") cannot be read as " + target);
}

bool text_like(Oid t) noexcept {
  return t == oid::text || t == oid::varchar || t == oid::bpchar || t == oid::name || t == oid::json ||
         t == oid::unknown_literal || t == oid::jsonb;
}

// numeric's binary form: ndigits, weight, sign, dscale, then base-10000 digits.
std::string numeric_text(const Field& f) {
  if (f.length < 8) mismatch(f, "numeric");
  int ndigits = load_be<std::uint16_t>(f.data);
  int weight = static_cast<std::int16_t>(load_be<std::uint16_t>(f.data + 2));
  unsigned sign = load_be<std::uint16_t>(f.data + 4);
  int dscale = load_be<std::uint16_t>(f.data + 6);
  if (f.length < 8 + 2 * ndigits) mismatch(f, "numeric");
  if (sign == 0xC000) return "NaN";
  if (sign == 0xD000) return "Infinity";
  if (sign == 0xF000) return "-Infinity";
  auto digit = [&](int i) -> int {
    return i >= 0 && i < ndigits ? static_cast<int>(load_be<std::uint16_t>(f.data + 8 + 2 * i)) : 0;
  };
  std::string s = sign == 0x4000 ? "-" : "";
  if (weight < 0) {
    s += "0";
  } else {
    for (int i = 0; i <= weight; ++i) {
      char buf[8];
      std::snprintf(buf, sizeof buf, i == 0 ? "%d" : "%04d", digit(i));
      s += buf;
    }
  }
  if (dscale > 0) {
    std::string frac;
    for (int i = weight + 1; static_cast<int>(frac.size()) < dscale; ++i) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "%04d", digit(i));
      frac += buf;
    }
    frac.resize(dscale);
    s += "." + frac;
  }
  return s;
}

std::string timestamp_text(const Field& f) {
  if (f.length != 8) mismatch(f, "a timestamp");
  std::int64_t raw = static_cast<std::int64_t>(load_be<std::uint64_t>(f.data));
  if (raw == INT64_MAX) return "infinity";
  if (raw == INT64_MIN) return "-infinity";
  std::int64_t us = raw + pg_epoch_us;  // no overflow: PostgreSQL's finite timestamps end in the year 294276
  std::time_t secs = static_cast<std::time_t>(std::floor(static_cast<double>(us) / 1e6));
  long frac = static_cast<long>(us - static_cast<std::int64_t>(secs) * 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  std::string s = buf;
  if (frac) {
    std::snprintf(buf, sizeof buf, ".%06ld", frac);
    s += buf;
    while (s.back() == '0') s.pop_back();
  }
  if (f.type == oid::timestamptz) s += "+00";
  return s;
}

}  // namespace

void throw_out_of_range(const Field& f, const char* target) {
  throw DecodeError("postgres: the value of column " + std::to_string(f.column) + " does not fit " + target);
}

std::int64_t decode_int(const Field& f) {
  switch (f.type) {
    case oid::int2:
      if (f.length != 2) break;
      return static_cast<std::int16_t>(load_be<std::uint16_t>(f.data));
    case oid::int4:
      if (f.length != 4) break;
      return static_cast<std::int32_t>(load_be<std::uint32_t>(f.data));
    case oid::int8:
      if (f.length != 8) break;
      return static_cast<std::int64_t>(load_be<std::uint64_t>(f.data));
    case oid::oid:
      if (f.length != 4) break;
      return load_be<std::uint32_t>(f.data);
  }
  mismatch(f, "an integer");
}

double decode_double(const Field& f) {
  switch (f.type) {
    case oid::float4: {
      if (f.length != 4) break;
      std::uint32_t bits = load_be<std::uint32_t>(f.data);
      float v;
      std::memcpy(&v, &bits, 4);
      return v;
    }
    case oid::float8: {
      if (f.length != 8) break;
      std::uint64_t bits = load_be<std::uint64_t>(f.data);
      double v;
      std::memcpy(&v, &bits, 8);
      return v;
    }
    case oid::numeric:
      return std::strtod(numeric_text(f).c_str(), nullptr);
    case oid::int2:
    case oid::int4:
    case oid::int8:
    case oid::oid:
      return static_cast<double>(decode_int(f));
  }
  mismatch(f, "a floating-point number");
}

bool decode_bool(const Field& f) {
  if (f.type != oid::bool_ || f.length != 1) mismatch(f, "bool");
  return f.data[0] != 0;
}

std::string_view decode_text_view(const Field& f) {
  if (!text_like(f.type)) mismatch(f, "text (read it as std::string, or cast to ::text)");
  if (f.type == oid::jsonb && f.length > 0) return std::string_view(f.data + 1, f.length - 1);  // version byte
  return std::string_view(f.data, f.length);
}

std::string decode_string(const Field& f) {
  if (text_like(f.type)) return std::string(decode_text_view(f));
  char buf[64];
  switch (f.type) {
    case oid::int2:
    case oid::int4:
    case oid::int8:
    case oid::oid:
      return std::to_string(decode_int(f));
    case oid::float4:
    case oid::float8:
      std::snprintf(buf, sizeof buf, "%.17g", decode_double(f));
      return buf;
    case oid::bool_:
      return decode_bool(f) ? "t" : "f";
    case oid::numeric:
      return numeric_text(f);
    case oid::timestamp:
    case oid::timestamptz:
      return timestamp_text(f);
    case oid::uuid: {
      if (f.length != 16) mismatch(f, "uuid");
      std::string s;
      for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(f.data[i]));
        s += buf;
      }
      return s;
    }
    case oid::bytea:
      return std::string(f.data, f.length);
    default:
      mismatch(f, "std::string (cast it to ::text in SQL)");
  }
}

std::span<const std::byte> decode_bytes(const Field& f) {
  if (f.type != oid::bytea) mismatch(f, "bytes");
  return {reinterpret_cast<const std::byte*>(f.data), static_cast<std::size_t>(f.length)};
}

Timestamp decode_timestamp(const Field& f) {
  if ((f.type != oid::timestamptz && f.type != oid::timestamp) || f.length != 8) mismatch(f, "a timestamp");
  std::int64_t us = static_cast<std::int64_t>(load_be<std::uint64_t>(f.data));
  if (us <= -timestamp_limit_us || us >= timestamp_limit_us)  // +-infinity among them
    throw_out_of_range(f, "std::chrono::system_clock::time_point (read it as std::string)");
  return Timestamp(std::chrono::duration_cast<Timestamp::duration>(std::chrono::microseconds(us + pg_epoch_us)));
}

}  // namespace detail

namespace {
[[noreturn]] void no_column(int column, int columns) {
  throw DecodeError("postgres: no column " + std::to_string(column) + " (the row has " + std::to_string(columns) + ")");
}
}  // namespace

bool Row::is_null(int column) const {
  if (static_cast<unsigned>(column) >= static_cast<unsigned>(columns_)) no_column(column, columns_);
  return PQgetisnull(r_, row_, column) != 0;
}

int Row::column_index(const char* name) const {
  int i = PQfnumber(r_, name);
  if (i < 0) throw DecodeError(std::string("postgres: no column named ") + name);
  return i;
}

detail::Field Row::field(int column, bool nullable) const {
  if (static_cast<unsigned>(column) >= static_cast<unsigned>(columns_)) [[unlikely]]
    no_column(column, columns_);
  int length = PQgetlength(r_, row_, column);
  if (length == 0) [[unlikely]]
    return empty_or_null(column, nullable);
  return detail::Field{PQgetvalue(r_, row_, column), length, PQftype(r_, column), column};
}

// A NULL reads as length 0, as an empty value does: PQgetisnull tells them apart.
detail::Field Row::empty_or_null(int column, bool nullable) const {
  if (!PQgetisnull(r_, row_, column))
    return detail::Field{PQgetvalue(r_, row_, column), 0, PQftype(r_, column), column};
  if (!nullable)
    throw DecodeError("postgres: column " + std::to_string(column) + " is NULL (read it as std::optional)");
  return detail::Field{nullptr, 0, 0, column};
}

Result::Result(pg_result* r) noexcept : r_(r), rows_(r ? PQntuples(r) : 0), columns_(r ? PQnfields(r) : 0) {}

std::string_view Result::column_name(int column) const {
  if (static_cast<unsigned>(column) >= static_cast<unsigned>(columns_)) return "";
  const char* n = PQfname(r_, column);
  return n ? n : "";
}
Oid Result::column_type(int column) const {
  return static_cast<unsigned>(column) < static_cast<unsigned>(columns_) ? PQftype(r_, column) : 0;
}
std::uint64_t Result::affected_rows() const noexcept {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  return *n ? std::strtoull(n, nullptr, 10) : 0;
}
void Result::check_scalar() const {
  if (size() != 1 || columns() != 1)
    throw DecodeError("postgres: scalar() wants one row of one column, the result has " + std::to_string(size()) +
                      " rows of " + std::to_string(columns()) + " columns");
}
void Result::throw_no_row(std::size_t row) const {
  throw DecodeError("postgres: no row " + std::to_string(row) + " (the result has " + std::to_string(rows_) + ")");
}
void Result::reset() noexcept {
  if (r_) PQclear(std::exchange(r_, nullptr));
  rows_ = columns_ = 0;
}

}  // namespace tulipa::postgres
