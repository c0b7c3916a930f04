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

std::uint64_t be(const char* p, int n) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

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
  int ndigits = static_cast<int>(be(f.data, 2));
  int weight = static_cast<std::int16_t>(be(f.data + 2, 2));
  unsigned sign = static_cast<unsigned>(be(f.data + 4, 2));
  int dscale = static_cast<int>(be(f.data + 6, 2));
  if (sign == 0xC000) return "NaN";
  if (sign == 0xD000) return "Infinity";
  if (sign == 0xF000) return "-Infinity";
  auto digit = [&](int i) -> int { return i >= 0 && i < ndigits ? static_cast<int>(be(f.data + 8 + 2 * i, 2)) : 0; };
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
  std::int64_t us = static_cast<std::int64_t>(be(f.data, 8)) + pg_epoch_us;
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
      return static_cast<std::int16_t>(be(f.data, 2));
    case oid::int4:
      return static_cast<std::int32_t>(be(f.data, 4));
    case oid::int8:
      return static_cast<std::int64_t>(be(f.data, 8));
    case oid::oid:
      return static_cast<std::uint32_t>(be(f.data, 4));
    default:
      mismatch(f, "an integer");
  }
}

double decode_double(const Field& f) {
  switch (f.type) {
    case oid::float4: {
      std::uint32_t bits = static_cast<std::uint32_t>(be(f.data, 4));
      float v;
      std::memcpy(&v, &bits, 4);
      return v;
    }
    case oid::float8: {
      std::uint64_t bits = be(f.data, 8);
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
    default:
      mismatch(f, "a floating-point number");
  }
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
  std::int64_t us = static_cast<std::int64_t>(be(f.data, 8)) + pg_epoch_us;
  return Timestamp(std::chrono::duration_cast<Timestamp::duration>(std::chrono::microseconds(us)));
}

}  // namespace detail

bool Row::is_null(int column) const {
  if (column < 0 || column >= PQnfields(r_))
    throw DecodeError("postgres: no column " + std::to_string(column) + " (the row has " +
                      std::to_string(PQnfields(r_)) + ")");
  return PQgetisnull(r_, row_, column) != 0;
}

int Row::column_index(const char* name) const {
  int i = PQfnumber(r_, name);
  if (i < 0) throw DecodeError(std::string("postgres: no column named ") + name);
  return i;
}

int Row::size() const noexcept { return PQnfields(r_); }

detail::Field Row::field(int column) const {
  if (is_null(column))
    throw DecodeError("postgres: column " + std::to_string(column) + " is NULL (read it as std::optional)");
  return detail::Field{PQgetvalue(r_, row_, column), PQgetlength(r_, row_, column), PQftype(r_, column), column};
}

std::size_t Result::size() const noexcept { return r_ ? static_cast<std::size_t>(PQntuples(r_)) : 0; }
int Result::columns() const noexcept { return r_ ? PQnfields(r_) : 0; }
std::string_view Result::column_name(int column) const {
  const char* n = r_ ? PQfname(r_, column) : nullptr;
  return n ? n : "";
}
Oid Result::column_type(int column) const { return r_ ? PQftype(r_, column) : 0; }
std::uint64_t Result::affected_rows() const noexcept {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  return *n ? std::strtoull(n, nullptr, 10) : 0;
}
void Result::check_scalar() const {
  if (size() != 1 || columns() != 1)
    throw DecodeError("postgres: scalar() wants one row of one column, the result has " + std::to_string(size()) +
                      " rows of " + std::to_string(columns()) + " columns");
}
void Result::reset() noexcept {
  if (r_) PQclear(std::exchange(r_, nullptr));
}

}  // namespace tulipa::postgres
