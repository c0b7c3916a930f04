// Splits a byte stream into lines, sans-I/O: bytes in (feed, finish at EOF), lines out (next).
//
// A line ends at '\n'; a '\r' right before it is dropped, so "\r\n" and "\n" end lines alike wherever the reads
// split them (even between the '\r' and the '\n': the '\r' waits in the buffer with the unfinished line). After
// finish(), what is left without a newline is still a line. A line longer than `max_line` bytes (not counting its
// ending) is reported once as too_long and the rest of it, up to its newline, is skipped without being buffered:
// the buffer never holds more than max_line + 1 bytes of an unfinished line plus one fed chunk, and once every
// line was taken it holds nothing (an idle connection keeps no buffer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace chat {

class LineFramer {
 public:
  // max_line: below 4 GiB (the offsets are 32-bit: a framer lives in every connection's coroutine frame).
  explicit LineFramer(std::size_t max_line) : max_line_(static_cast<std::uint32_t>(max_line)) {}

  void feed(std::string_view data);
  // EOF: the bytes after the last newline form a last line (if there are any).
  void finish() noexcept { eof_ = true; }

  struct Next {
    enum class Kind { none, line, too_long } kind = Kind::none;
    // The line, without its ending. Valid until the next call of feed() or next().
    std::string_view text{};
  };
  Next next();

  // Bytes held now (an unfinished line and lines not yet taken).
  std::size_t buffered() const noexcept { return size_ - pos_; }
  bool at_eof() const noexcept { return eof_ && buffered() == 0; }
  // finish() was called: no more bytes come.
  bool finished() const noexcept { return eof_; }

 private:
  // The buffer: a pointer and two 32-bit counts, not a std::string (32 bytes), since every connection's coroutine
  // frame holds a framer (32 bytes in all, not 48). Null while empty.
  void drop_taken() noexcept;   // moves what next() has not returned to the front
  void reserve(std::size_t n);  // room for n more bytes
  void release() noexcept;      // empty: no block
  void fit();                   // the block sized to what it holds
  std::unique_ptr<char[]> buf_;
  std::uint32_t size_ = 0;
  std::uint32_t cap_ = 0;
  std::uint32_t max_line_;
  std::uint32_t pos_ = 0;  // start of what next() has not returned yet
  bool skipping_ = false;  // inside an overlong line: drop up to its newline
  bool eof_ = false;
};

}  // namespace chat
