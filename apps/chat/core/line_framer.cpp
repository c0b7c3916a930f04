#include "line_framer.hpp"

namespace chat {

void LineFramer::feed(std::string_view data) {
  if (pos_ > 0) {  // drop what was taken; what stays is at most an unfinished line
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  if (skipping_) {
    std::size_t nl = data.find('\n');
    if (nl == std::string_view::npos) return;
    skipping_ = false;
    data.remove_prefix(nl + 1);
  }
  buf_.append(data);
}

LineFramer::Next LineFramer::next() {
  std::string_view rest(buf_.data() + pos_, buf_.size() - pos_);
  std::size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) {
    // A '\r' at the very end may be the first half of "\r\n": it may not count toward the limit yet.
    std::size_t pending = rest.size() - (rest.ends_with('\r') ? 1 : 0);
    if (pending > max_line_) {
      buf_.clear();
      pos_ = 0;
      skipping_ = !eof_;
      return {Next::Kind::too_long, {}};
    }
    if (rest.empty()) {  // all taken: an idle client holds no buffer
      buf_.clear();
      pos_ = 0;
      if (buf_.capacity() > 64) buf_.shrink_to_fit();
      return {};
    }
    if (eof_) {
      pos_ = static_cast<std::uint32_t>(buf_.size());
      if (rest.ends_with('\r')) rest.remove_suffix(1);
      return {Next::Kind::line, rest};
    }
    if (buf_.capacity() > 2 * std::size_t{max_line_} + 4096 && rest.size() < 64) {
      buf_.erase(0, pos_);  // a burst grew the buffer: give the memory back while idle
      pos_ = 0;
      buf_.shrink_to_fit();
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
