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

#include "tulipa/postgres/detail/codec.hpp"
#include "tulipa/postgres/types.hpp"

struct pg_result;

namespace tulipa::postgres {

class Result;

class Row {
 public:
  // By column index (0-based) or name. T is one of the types in types.hpp, or std::optional of one (NULL ->
  // nullopt); a NULL into a non-optional T throws DecodeError. The common types (integers, double, text,
  // timestamps) decode inline from the field's bytes: one call into libpq's accessors per field, nothing copied.
  template <class T>
  T get(int column) const {
    if constexpr (detail::is_optional<T>::value) {
      detail::Field f = field(column, true);
      if (!f.data) return std::nullopt;
      return detail::decode<typename T::value_type>(f);
    } else {
      return detail::decode<T>(field(column, false));
    }
  }
  template <class T>
  T get(const char* name) const {
    return get<T>(column_index(name));
  }
  bool is_null(int column) const;
  int column_index(const char* name) const;  // DecodeError when there is no such column
  int size() const noexcept { return columns_; }

 private:
  friend class Result;
  Row(const pg_result* r, int row, int columns) noexcept : r_(r), row_(row), columns_(columns) {}
  // The field's bytes; a NULL gives data == nullptr when `nullable`, DecodeError otherwise (so does a column out of
  // range, checked here: libpq's accessors would report it to the connection's notice handler).
  detail::Field field(int column, bool nullable) const;
  detail::Field empty_or_null(int column, bool nullable) const;
  const pg_result* r_;
  int row_;
  int columns_;
};

class Result {
 public:
  Result() noexcept = default;
  explicit Result(pg_result* r) noexcept;
  Result(Result&& o) noexcept
      : r_(std::exchange(o.r_, nullptr)), rows_(std::exchange(o.rows_, 0)), columns_(std::exchange(o.columns_, 0)) {}
  Result& operator=(Result&& o) noexcept {
    if (this != &o) {
      reset();
      r_ = std::exchange(o.r_, nullptr);
      rows_ = std::exchange(o.rows_, 0);
      columns_ = std::exchange(o.columns_, 0);
    }
    return *this;
  }
  ~Result() { reset(); }

  std::size_t size() const noexcept { return static_cast<std::size_t>(rows_); }  // rows
  bool empty() const noexcept { return rows_ == 0; }
  int columns() const noexcept { return columns_; }
  std::string_view column_name(int column) const;  // "" for a column out of range
  Oid column_type(int column) const;               // 0 for a column out of range
  // Row `row` (DecodeError when row >= size()).
  Row operator[](std::size_t row) const {
    if (row >= size()) throw_no_row(row);
    return Row(r_, static_cast<int>(row), columns_);
  }
  // Rows changed by INSERT / UPDATE / DELETE / COPY (PQcmdTuples), rows returned by SELECT; 0 otherwise.
  std::uint64_t affected_rows() const noexcept;
  // The one value of a one-row, one-column result (DecodeError otherwise).
  template <class T>
  T scalar() const {
    check_scalar();
    return Row(r_, 0, 1).get<T>(0);
  }

  class iterator {
   public:
    using value_type = Row;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    Row operator*() const noexcept { return Row(r_, i_, columns_); }
    iterator& operator++() noexcept {
      ++i_;
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++i_;
      return old;
    }
    bool operator==(const iterator& o) const noexcept { return i_ == o.i_; }

   private:
    friend class Result;
    iterator(const pg_result* r, int i, int columns) noexcept : r_(r), i_(i), columns_(columns) {}
    const pg_result* r_ = nullptr;
    int i_ = 0;
    int columns_ = 0;
  };
  iterator begin() const noexcept { return iterator(r_, 0, columns_); }
  iterator end() const noexcept { return iterator(r_, rows_, columns_); }

  pg_result* native() const noexcept { return r_; }

 private:
  void check_scalar() const;
  [[noreturn]] void throw_no_row(std::size_t row) const;
  void reset() noexcept;
  pg_result* r_ = nullptr;
  int rows_ = 0, columns_ = 0;  // PQntuples and PQnfields, read once
};

}  // namespace tulipa::postgres
