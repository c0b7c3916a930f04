// Request lookups, Response building and the reason phrases.
#include "tulipa/http/message.hpp"

#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace tulipa::http {

std::string_view Request::header(std::string_view name, std::string_view fallback) const noexcept {
  for (const Header& h : headers_)
    if (iequals(h.name, name)) return h.value;
  return fallback;
}

bool Request::has_header(std::string_view name) const noexcept {
  return std::any_of(headers_.begin(), headers_.end(), [&](const Header& h) { return iequals(h.name, name); });
}

std::string_view Request::param(std::string_view name, std::string_view fallback) const noexcept {
  for (std::size_t i = 0; i < param_count_; ++i)
    if (params_[i].name == name) return params_[i].value;
  return fallback;
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

namespace {

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// Fields the server writes itself (framing and connection management belong to it).
bool reserved(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") || iequals(name, "date") ||
         iequals(name, "connection") || iequals(name, "content-type");
}

}  // namespace

Response::Response(int status, std::string body, std::string_view content_type) : status_(status) {
  set_body(std::move(body), content_type);
}

Response& Response::add_header(std::string_view name, std::string_view value) {
  if (name.empty() || has_crlf(name) || has_crlf(value) || name.find(':') != std::string_view::npos)
    throw std::invalid_argument("http::Response::add_header: empty name, a colon in the name, or CR/LF");
  if (reserved(name))
    throw std::invalid_argument("http::Response::add_header: the server writes this field itself (" +
                                std::string(name) + "); use set_body for Content-Type");
  headers_.append(name).append(": ").append(value).append("\r\n");
  return *this;
}

Response& Response::set_body(std::string body, std::string_view content_type) {
  file_ = File();
  producer_ = nullptr;
  body_ = std::move(body);
  static_body_ = {};
  if (has_crlf(content_type)) throw std::invalid_argument("http::Response: CR or LF in the content type");
  if (content_type.size() <= content_type_.size()) {
    std::copy(content_type.begin(), content_type.end(), content_type_.begin());
    content_type_size_ = static_cast<std::uint8_t>(content_type.size());
    long_content_type_.clear();
  } else {
    content_type_size_ = 0;
    long_content_type_ = content_type;
  }
  return *this;
}

Response& Response::set_stream_body(BodyProducer producer, std::string_view content_type) {
  set_body({}, content_type);
  producer_ = std::move(producer);
  return *this;
}

Response& Response::set_static_body(std::string_view body, std::string_view content_type) {
  set_body({}, content_type);
  static_body_ = body.data() ? body : std::string_view("", 0);
  return *this;
}

std::string_view Response::content_type() const noexcept {
  if (content_type_size_) return {content_type_.data(), content_type_size_};
  return long_content_type_;
}

Response::File& Response::File::operator=(File&& o) noexcept {
  if (this != &o) {
    if (fd >= 0) ::close(fd);
    fd = std::exchange(o.fd, -1);
    offset = o.offset;
    length = o.length;
  }
  return *this;
}

Response::File::~File() {
  if (fd >= 0) ::close(fd);
}

Response& Response::set_file_body(int fd, std::uint64_t offset, std::uint64_t length, std::string_view content_type) {
  set_body({}, content_type);
  File f;
  f.fd = fd;
  f.offset = offset;
  f.length = length;
  file_ = std::move(f);
  return *this;
}

}  // namespace tulipa::http
