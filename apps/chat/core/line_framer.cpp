#include "line_framer.hpp"

#include <algorithm>
#include <cstring>

namespace chat {

void LineFramer::drop_taken() noexcept {
  if (pos_ == 0) return;
  std::memmove(buf_.get(), buf_.get() + pos_, size_ - pos_);
  size_ -= pos_;
  pos_ = 0;
}

void LineFramer::reserve(std::size_t n) {
  if (cap_ - size_ >= n) return;
  // At most max_line + 1 bytes of an unfinished line plus one fed chunk: far below the 32-bit counts.
  std::size_t cap = std::max<std::size_t>({std::size_t{cap_} * 2, size_ + n, 64});
  auto bigger = std::make_unique_for_overwrite<char[]>(cap);
  if (size_) std::memcpy(bigger.get(), buf_.get(), size_);
  buf_ = std::move(bigger);
  cap_ = static_cast<std::uint32_t>(cap);
}

void LineFramer::release() noexcept {
  buf_.reset();
  size_ = cap_ = pos_ = 0;
}

void LineFramer::fit() {
  if (size_ == 0) return release();
  auto fitted = std::make_unique_for_overwrite<char[]>(size_);
  std::memcpy(fitted.get(), buf_.get(), size_);
  buf_ = std::move(fitted);
  cap_ = size_;
}

void LineFramer::feed(std::string_view data) {
  drop_taken();  // what stays is at most an unfinished line
  if (skipping_) {
    std::size_t nl = data.find('\n');
    if (nl == std::string_view::npos) return;
    skipping_ = false;
    data.remove_prefix(nl + 1);
  }
  if (data.empty()) return;
  reserve(data.size());
  std::memcpy(buf_.get() + size_, data.data(), data.size());
  size_ += static_cast<std::uint32_t>(data.size());
}

LineFramer::Next LineFramer::next() {
  std::string_view rest = buf_ ? std::string_view(buf_.get() + pos_, size_ - pos_) : std::string_view();
  std::size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) {
    // A '\r' at the very end may be the first half of "\r\n": it may not count toward the limit yet.
    std::size_t pending = rest.size() - (rest.ends_with('\r') ? 1 : 0);
    if (pending > max_line_) {
      release();
      skipping_ = !eof_;
      return {Next::Kind::too_long, {}};
    }
    if (rest.empty()) {  // all taken: an idle client holds no buffer
      release();
      return {};
    }
    if (eof_) {
      pos_ = size_;
      if (rest.ends_with('\r')) rest.remove_suffix(1);
      return {Next::Kind::line, rest};
    }
    if (cap_ > 2 * std::size_t{max_line_} + 4096 && rest.size() < 64) {
      drop_taken();  // a burst grew the buffer: give the memory back while idle
      fit();
    }
    return {};
  }
  std::string_view line = rest.substr(0, nl);
  pos_ += static_cast<std::uint32_t>(nl + 1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (line.size() > max_line_) return {Next::Kind::too_long, {}};
  return {Next::Kind::line, line};
}

}  // namespace chat
