// A query's result: rows of typed fields, read in place from libpq's PGresult (one allocation by libpq per result;
// nothing is copied until you ask for a std::string).
//
//   Result r = co_await conn.query("SELECT id, name FROM users WHERE id > $1", 10);
//   for (Row row : r) { int64_t id = row.get<int64_t>("id"); auto name = row.get<std::optional<std::string>>(1); }
//   int64_t n = (co_await conn.query("SELECT count(*) FROM users")).scalar<int64_t>();
//
// Lifetimes: a Row and any std::string_view / std::span it returned borrow the Result; keep the Result alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "tulipa/postgres/types.hpp"

struct pg_result;

namespace tulipa::postgres {

class Result;

class Row {
 public:
  Row(const pg_result* r, int row) noexcept : r_(r), row_(row) {}
  // By column index (0-based) or name. T is one of the types in types.hpp, or std::optional of one (NULL ->
  // nullopt); a NULL into a non-optional T throws DecodeError.
  template <class T>
  T get(int column) const {
    if constexpr (detail::is_optional<T>::value) {
      if (is_null(column)) return std::nullopt;
      return get<typename T::value_type>(column);
    } else {
      return detail::decode<T>(field(column));
    }
  }
  template <class T>
  T get(const char* name) const {
    return get<T>(column_index(name));
  }
  bool is_null(int column) const;
  int column_index(const char* name) const;  // DecodeError when there is no such column
  int size() const noexcept;                 // columns

 private:
  detail::Field field(int column) const;
  const pg_result* r_;
  int row_;
};

class Result {
 public:
  Result() noexcept = default;
  explicit Result(pg_result* r) noexcept : r_(r) {}
  Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Result& operator=(Result&& o) noexcept {
    if (this != &o) {
      reset();
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  ~Result() { reset(); }

  std::size_t size() const noexcept;  // rows
  bool empty() const noexcept { return size() == 0; }
  int columns() const noexcept;
  std::string_view column_name(int column) const;
  Oid column_type(int column) const;
  Row operator[](std::size_t row) const noexcept { return Row(r_, static_cast<int>(row)); }
  // Rows changed by INSERT / UPDATE / DELETE / COPY (PQcmdTuples), rows returned by SELECT; 0 otherwise.
  std::uint64_t affected_rows() const noexcept;
  // The one value of a one-row, one-column result (DecodeError otherwise).
  template <class T>
  T scalar() const {
    check_scalar();
    return (*this)[0].get<T>(0);
  }

  class iterator {
   public:
    using value_type = Row;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(const pg_result* r, int i) : r_(r), i_(i) {}
    Row operator*() const noexcept { return Row(r_, i_); }
    iterator& operator++() noexcept {
      ++i_;
      return *this;
    }
    iterator operator++(int) noexcept { return iterator(r_, i_++); }
    bool operator==(const iterator& o) const noexcept { return i_ == o.i_; }

   private:
    const pg_result* r_ = nullptr;
    int i_ = 0;
  };
  iterator begin() const noexcept { return iterator(r_, 0); }
  iterator end() const noexcept { return iterator(r_, static_cast<int>(size())); }

  pg_result* native() const noexcept { return r_; }

 private:
  void check_scalar() const;
  void reset() noexcept;
  pg_result* r_ = nullptr;
};

}  // namespace tulipa::postgres
