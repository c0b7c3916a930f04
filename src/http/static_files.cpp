// Static files (static_files.hpp): safe path resolution under a root, conditional and range requests.
#include "tulipa/http/static_files.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <ctime>
#include <memory>
#include <system_error>

namespace tulipa::http {
namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The decoded path relative to the root ("a/b.txt"), or false for one we refuse (bad escapes, NUL, "..").
bool relative_path(std::string_view raw, std::string& out) {
  std::string decoded;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return false;
      const int h = hex(raw[i + 1]), l = hex(raw[i + 2]);
      if (h < 0 || l < 0) return false;
      c = static_cast<char>(h * 16 + l);
      if (c == '\0' || c == '/' || c == '\\') return false;  // an encoded separator would hide a segment
      i += 2;
    } else if (c == '\\') {
      return false;
    }
    decoded.push_back(c);
  }
  out.clear();
  std::string_view rest = decoded;
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") return false;
    if (!out.empty()) out.push_back('/');
    out.append(seg);
  }
  return true;
}

// openat2 with RESOLVE_BENEATH: no "..", absolute path or symlink may leave dirfd's tree.
int open_beneath(int dirfd, const std::string& path) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path.empty() ? "." : path.c_str(), &how, sizeof how));
}

std::string http_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

// IMF-fixdate only (RFC 9110 5.6.7: the other two forms are obsolete; an unparsable date is ignored).
bool parse_http_date(std::string_view s, std::time_t& out) {
  std::tm tm{};
  const std::string str(s);
  const char* end = strptime(str.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return false;
  out = timegm(&tm);
  return true;
}

bool etag_matches(std::string_view list, std::string_view etag) {
  // Weak comparison (RFC 9110 13.1.2): W/ prefixes are ignored.
  const std::string_view strong = etag;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == "*") return true;
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == strong) return true;
  }
  return false;
}

bool parse_u64(std::string_view s, std::uint64_t& v) {
  if (s.empty() || s.size() > 19) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

enum class RangeKind { none, ok, unsatisfiable };

// One "bytes=" range against a file of `size` bytes.
RangeKind parse_range(std::string_view h, std::uint64_t size, std::uint64_t& first, std::uint64_t& last) {
  if (!h.starts_with("bytes=")) return RangeKind::none;
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return RangeKind::none;  // several ranges: the whole file
  const std::size_t dash = h.find('-');
  if (dash == std::string_view::npos) return RangeKind::none;
  const std::string_view a = h.substr(0, dash), b = h.substr(dash + 1);
  std::uint64_t x = 0, y = 0;
  if (a.empty()) {  // suffix: the last y bytes
    if (!parse_u64(b, y)) return RangeKind::none;
    if (y == 0 || size == 0) return RangeKind::unsatisfiable;
    first = y >= size ? 0 : size - y;
    last = size - 1;
    return RangeKind::ok;
  }
  if (!parse_u64(a, x)) return RangeKind::none;
  if (b.empty())
    y = UINT64_MAX;
  else if (!parse_u64(b, y) || y < x)
    return RangeKind::none;
  if (x >= size) return RangeKind::unsatisfiable;
  first = x;
  last = std::min(y, size - 1);
  return RangeKind::ok;
}

struct Root {
  Root(int f, StaticOptions o) : fd(f), options(std::move(o)) {}
  Root(const Root&) = delete;
  ~Root() { ::close(fd); }
  int fd;
  StaticOptions options;
};

Response serve(const Root& root, Request& req) {
  std::string_view raw = req.path();
  if (!req.params().empty()) raw = req.params().back().value;
  std::string rel;
  if (!relative_path(raw, rel)) return Response(400, "Bad path\n");
  int fd = open_beneath(root.fd, rel);
  if (fd < 0) return Response(404, "Not Found\n");  // missing, or would leave the root (EXDEV, ELOOP)
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Response(404, "Not Found\n");
  }
  std::string name = rel;
  if (S_ISDIR(st.st_mode)) {
    if (root.options.index.empty()) {
      ::close(fd);
      return Response(404, "Not Found\n");
    }
    const int dir = fd;
    fd = open_beneath(dir, root.options.index);
    ::close(dir);
    if (fd < 0 || ::fstat(fd, &st) != 0) {
      if (fd >= 0) ::close(fd);
      return Response(404, "Not Found\n");
    }
    name = root.options.index;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Response(404, "Not Found\n");
  }
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  char etag_buf[64];
  const int n = std::snprintf(etag_buf, sizeof etag_buf, "\"%llx-%llx\"",
                              static_cast<unsigned long long>(st.st_mtim.tv_sec) * 1000000000ull +
                                  static_cast<unsigned long long>(st.st_mtim.tv_nsec),
                              static_cast<unsigned long long>(size));
  const std::string_view etag(etag_buf, static_cast<std::size_t>(n));
  const std::string modified = http_date(st.st_mtim.tv_sec);
  const auto common = [&](Response& r) {
    r.add_header("ETag", etag);
    r.add_header("Last-Modified", modified);
    r.add_header("Accept-Ranges", "bytes");
    if (!root.options.cache_control.empty()) r.add_header("Cache-Control", root.options.cache_control);
  };

  // Conditionals: If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
  bool not_modified = false;
  const std::string_view inm = req.header("if-none-match");
  if (!inm.empty()) {
    not_modified = etag_matches(inm, etag);
  } else if (std::time_t since = 0; parse_http_date(req.header("if-modified-since"), since)) {
    not_modified = st.st_mtim.tv_sec <= since;
  }
  if (not_modified) {
    ::close(fd);
    Response r(304);
    common(r);
    return r;
  }

  const std::string_view type = content_type_for(name);
  std::uint64_t first = 0, last = 0;
  RangeKind range = parse_range(req.header("range"), size, first, last);
  if (range != RangeKind::none && req.has_header("if-range")) {
    const std::string_view ir = req.header("if-range");
    std::time_t t = 0;
    const bool same = ir.starts_with("\"") ? ir == etag : (parse_http_date(ir, t) && t == st.st_mtim.tv_sec);
    if (!same) range = RangeKind::none;
  }
  if (range == RangeKind::unsatisfiable) {
    ::close(fd);
    Response r(416, "Range Not Satisfiable\n");
    r.add_header("Content-Range", "bytes */" + std::to_string(size));
    common(r);
    return r;
  }
  Response r(range == RangeKind::ok ? 206 : 200);
  if (range == RangeKind::ok) {
    r.set_file_body(fd, first, last - first + 1, type);
    r.add_header("Content-Range",
                 "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size));
  } else {
    r.set_file_body(fd, 0, size, type);
  }
  common(r);
  return r;
}

}  // namespace

std::string_view content_type_for(std::string_view file_name) noexcept {
  const std::size_t dot = file_name.rfind('.');
  if (dot == std::string_view::npos || file_name.find('/', dot) != std::string_view::npos)
    return "application/octet-stream";
  const std::string_view ext = file_name.substr(dot + 1);
  struct Type {
    std::string_view ext, type;
  };
  static constexpr Type types[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"txt", "text/plain; charset=utf-8"},
      {"md", "text/markdown; charset=utf-8"},
      {"xml", "application/xml"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"wasm", "application/wasm"},
      {"pdf", "application/pdf"},
      {"zip", "application/zip"},
      {"gz", "application/gzip"},
      {"mp4", "video/mp4"},
      {"webm", "video/webm"},
      {"mp3", "audio/mpeg"},
      {"ogg", "audio/ogg"},
      {"wav", "audio/wav"},
      {"csv", "text/csv; charset=utf-8"},
  };
  for (const Type& t : types)
    if (iequals(t.ext, ext)) return t.type;
  return "application/octet-stream";
}

SyncHandler static_files(std::string root, StaticOptions options) {
  const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "http::static_files: cannot open " + root);
  auto r = std::make_shared<Root>(fd, std::move(options));
  return [r](Request& req) { return serve(*r, req); };
}

}  // namespace tulipa::http
