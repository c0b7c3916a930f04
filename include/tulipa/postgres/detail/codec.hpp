// Internals of tulipa/postgres/types.hpp: how query() encodes its arguments and Row::get decodes a field (the
// mapping itself is the contract, written at the top of types.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tulipa/postgres/types.hpp"

namespace tulipa::postgres {

namespace detail {

// One encoded parameter: what PQsendQueryParams / PQsendQueryPrepared take. `scratch` holds a scalar's bytes
// (big-endian); `value` points either there or into the caller's argument, which must live until the query is sent.
struct Param {
  const char* value = nullptr;  // null: SQL NULL
  int length = 0;
  Oid type = oid::unknown;
  char scratch[8];
};

inline void put_be(Param& p, std::uint64_t v, int bytes) noexcept {
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) p.scratch[i] = static_cast<char>(v & 0xff);
  p.value = p.scratch;
  p.length = bytes;
}

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
inline constexpr std::int64_t pg_epoch_us = 946684800LL * 1000000;
// A timestamp within this many microseconds of PostgreSQL's epoch (years 1747 to 2253) fits Timestamp once moved to
// the Unix epoch (system_clock's nanoseconds end in 2262); decode_timestamp rejects what lies beyond (and
// +-infinity): read those as std::string.
inline constexpr std::int64_t timestamp_limit_us = 8'000'000'000'000'000LL;

template <class T>
void encode(Param& p, const T& v) {
  using U = std::remove_cvref_t<T>;
  if constexpr (is_optional<U>::value) {
    if (v) {
      encode(p, *v);
    } else {
      Param typed;
      encode(typed, typename U::value_type{});
      p.type = typed.type;
      p.value = nullptr;
    }
  } else if constexpr (std::is_same_v<U, std::nullopt_t> || std::is_same_v<U, std::nullptr_t>) {
    p.type = oid::unknown;
    p.value = nullptr;
  } else if constexpr (std::is_same_v<U, bool>) {
    p.type = oid::bool_;
    put_be(p, v ? 1 : 0, 1);
  } else if constexpr (std::is_integral_v<U>) {
    static_assert(!(std::is_unsigned_v<U> && sizeof(U) == 8), "uint64_t does not fit int8: convert it explicitly");
    if constexpr (sizeof(U) <= 2 && std::is_signed_v<U>) {
      p.type = oid::int2;
      put_be(p, static_cast<std::uint16_t>(v), 2);
    } else if constexpr (sizeof(U) < 4 || (sizeof(U) == 4 && std::is_signed_v<U>)) {
      p.type = oid::int4;
      put_be(p, static_cast<std::uint32_t>(static_cast<std::int32_t>(v)), 4);
    } else {
      p.type = oid::int8;
      put_be(p, static_cast<std::uint64_t>(static_cast<std::int64_t>(v)), 8);
    }
  } else if constexpr (std::is_same_v<U, float>) {
    p.type = oid::float4;
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    put_be(p, bits, 4);
  } else if constexpr (std::is_same_v<U, double>) {
    p.type = oid::float8;
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    put_be(p, bits, 8);
  } else if constexpr (std::is_convertible_v<const U&, std::string_view>) {
    std::string_view s(v);
    p.type = oid::text;
    p.value = s.data() ? s.data() : "";
    p.length = static_cast<int>(s.size());
  } else if constexpr (std::is_convertible_v<const U&, std::span<const std::byte>>) {
    std::span<const std::byte> b(v);
    p.type = oid::bytea;
    p.value = b.data() ? reinterpret_cast<const char*>(b.data()) : "";
    p.length = static_cast<int>(b.size());
  } else if constexpr (std::is_same_v<U, std::chrono::time_point<std::chrono::system_clock, typename U::duration>>) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(v.time_since_epoch()).count() - pg_epoch_us;
    p.type = oid::timestamptz;
    put_be(p, static_cast<std::uint64_t>(us), 8);
  } else {
    static_assert(sizeof(U) == 0, "tulipa::postgres: no encoding for this parameter type (see types.hpp)");
  }
}

// A field of a result, as the server sent it (binary format).
struct Field {
  const char* data;  // null: SQL NULL (only from Row::get<std::optional<T>>)
  int length;
  Oid type;
  int column;
};

// The unsigned integer U in the sizeof(U) big-endian bytes at p.
template <class U>
U load_be(const char* p) noexcept {
  U v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (sizeof(U) == 2) {
    return static_cast<U>(__builtin_bswap16(v));
  } else if constexpr (sizeof(U) == 4) {
    return static_cast<U>(__builtin_bswap32(v));
  } else {
    static_assert(sizeof(U) == 8);
    return static_cast<U>(__builtin_bswap64(v));
  }
}

// Decoders (src/postgres/result.cpp): every type each target accepts. Each throws DecodeError (below), naming the
// column, when the type or the length does not fit. decode<T> below reads the usual case inline and calls these for
// the rest.
std::int64_t decode_int(const Field& f);
double decode_double(const Field& f);
bool decode_bool(const Field& f);
std::string decode_string(const Field& f);
std::string_view decode_text_view(const Field& f);
std::span<const std::byte> decode_bytes(const Field& f);
Timestamp decode_timestamp(const Field& f);
[[noreturn]] void throw_out_of_range(const Field& f, const char* target);

template <class T>
T decode(const Field& f) {
  if constexpr (std::is_same_v<T, bool>) {
    return decode_bool(f);
  } else if constexpr (std::is_integral_v<T>) {
    std::int64_t v;
    if (f.type == oid::int4 && f.length == 4)
      v = static_cast<std::int32_t>(load_be<std::uint32_t>(f.data));
    else if (f.type == oid::int8 && f.length == 8)
      v = static_cast<std::int64_t>(load_be<std::uint64_t>(f.data));
    else
      v = decode_int(f);
    if (!std::in_range<T>(v)) throw_out_of_range(f, "the requested integer type");
    return static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (f.type == oid::float8 && f.length == 8) {
      std::uint64_t bits = load_be<std::uint64_t>(f.data);
      double d;
      std::memcpy(&d, &bits, 8);
      return static_cast<T>(d);
    }
    return static_cast<T>(decode_double(f));
  } else if constexpr (std::is_same_v<T, std::string>) {
    return decode_string(f);
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    if (f.type == oid::text || f.type == oid::varchar) return std::string_view(f.data, f.length);
    return decode_text_view(f);
  } else if constexpr (std::is_same_v<T, std::span<const std::byte>>) {
    return decode_bytes(f);
  } else if constexpr (std::is_same_v<T, std::vector<std::byte>>) {
    auto b = decode_bytes(f);
    return std::vector<std::byte>(b.begin(), b.end());
  } else if constexpr (std::is_same_v<T, Timestamp>) {
    if (f.type == oid::timestamptz && f.length == 8) {
      std::int64_t us = static_cast<std::int64_t>(load_be<std::uint64_t>(f.data));
      if (us > -timestamp_limit_us && us < timestamp_limit_us)
        return Timestamp(std::chrono::duration_cast<Timestamp::duration>(std::chrono::microseconds(us + pg_epoch_us)));
    }
    return decode_timestamp(f);
  } else {
    static_assert(sizeof(T) == 0, "tulipa::postgres: no decoding to this type (see types.hpp)");
  }
}

}  // namespace detail

}  // namespace tulipa::postgres
