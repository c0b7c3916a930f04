// How C++ values travel to and from PostgreSQL (binary format both ways, no text parsing on the hot path).
//
// Parameters (query(sql, args...)), each with the type the server is told:
//   bool -> bool; int16_t -> int2; other integers up to 32 bits -> int4; 64-bit integers (and uint32_t) -> int8;
//   float -> float4; double -> float8; std::string, std::string_view, const char* -> text;
//   std::span<const std::byte>, std::vector<std::byte> -> bytea;
//   std::chrono::system_clock::time_point -> timestamptz (microseconds, UTC);
//   std::optional<T> -> T, NULL when empty; std::nullopt / nullptr -> NULL of a type the server infers.
// A text parameter compared with another type needs a cast in SQL ($1::date), as in asyncpg; assignments (INSERT,
// UPDATE) convert by themselves.
// Results (Row::get<T>): integers from int2/int4/int8/oid (range-checked), double/float from float4/float8/numeric
// and integers, bool, std::string from any text-like type and from numbers, bool, uuid, timestamps (formatted),
// std::string_view from text-like types (a view into the Result), std::vector<std::byte> / std::span from bytea,
// system_clock::time_point from timestamptz / timestamp; std::optional<T> for a column that may be NULL.
#pragma once

#include <chrono>
#include <stdexcept>

namespace tulipa::postgres {

using Oid = unsigned int;
using Timestamp = std::chrono::system_clock::time_point;

// Type OIDs (pg_type.h) the driver encodes or decodes.
namespace oid {
inline constexpr Oid unknown = 0, bool_ = 16, bytea = 17, name = 19, int8 = 20, int2 = 21, int4 = 23, text = 25,
                     oid = 26, json = 114, float4 = 700, float8 = 701, unknown_literal = 705, bpchar = 1042,
                     varchar = 1043, date = 1082, timestamp = 1114, timestamptz = 1184, numeric = 1700, uuid = 2950,
                     jsonb = 3802;
}

// A value that cannot become the requested C++ type (wrong column type, out of range, NULL into a non-optional).
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tulipa::postgres
