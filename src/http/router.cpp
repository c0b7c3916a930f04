// Route table and matching (router.hpp).
#include "tulipa/http/router.hpp"

#include <stdexcept>

namespace tulipa::http {
namespace {

bool is_param(std::string_view s) { return s.size() >= 3 && s.front() == '{' && s.back() == '}'; }
bool is_rest(std::string_view s) { return s.size() >= 6 && s.ends_with("...}"); }
std::string_view param_name(std::string_view s) {
  s = s.substr(1, s.size() - 2);
  if (s.ends_with("...")) s.remove_suffix(3);
  return s;
}

// The next segment of `path` (which starts after a '/'), advancing it.
std::string_view next_segment(std::string_view& path) {
  const std::size_t slash = path.find('/');
  const std::string_view seg = path.substr(0, slash);
  path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  return seg;
}

}  // namespace

void Router::add(std::string_view method, std::string_view pattern, SyncHandler sync, AsyncHandler async,
                 StreamHandler stream) {
  if (pattern.empty() || pattern.front() != '/') throw std::invalid_argument("http::Router: a pattern starts with '/'");
  if (method.empty()) throw std::invalid_argument("http::Router: empty method");
  Route r;
  r.method = method;
  std::string_view rest = pattern.substr(1);
  std::size_t params = 0;
  for (;;) {
    const bool last = rest.find('/') == std::string_view::npos;
    std::string_view seg = next_segment(rest);
    if (is_param(seg)) {
      if (++params > Request::max_params) throw std::invalid_argument("http::Router: too many parameters");
      if (is_rest(seg) && !last) throw std::invalid_argument("http::Router: {name...} must be the last segment");
    } else {
      ++r.literal_count;
    }
    r.segments.emplace_back(seg);
    if (last) break;
  }
  r.sync = std::move(sync);
  r.async = std::move(async);
  r.stream = std::move(stream);
  routes_.push_back(std::move(r));
}

bool Router::matches(const Route& r, std::string_view path, Request* request) const {
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  bool at_end = false;
  std::uint8_t count = 0;
  for (const std::string& pat : r.segments) {
    if (at_end) return false;
    if (is_rest(pat)) {
      if (path.empty()) return false;
      if (request) request->params_[count++] = {param_name(pat), path};
      at_end = true;
      path = {};
      continue;
    }
    const bool last = path.find('/') == std::string_view::npos;
    const std::string_view seg = next_segment(path);
    if (is_param(pat)) {
      if (seg.empty()) return false;
      if (request) request->params_[count++] = {param_name(pat), seg};
    } else if (seg != pat) {
      return false;
    }
    at_end = last;
  }
  if (!at_end) return false;
  if (request) request->param_count_ = count;
  return true;
}

Router::Match Router::find(std::string_view method, std::string_view path, Request& request) const {
  Match m;
  // The route of this method whose pattern has the most literal segments; the first added among equals.
  const auto pick = [&](std::string_view want) {
    const Route* best = nullptr;
    for (const Route& r : routes_)
      if (r.method == want && (!best || r.literal_count > best->literal_count) && matches(r, path, nullptr)) best = &r;
    return best;
  };
  const Route* best = pick(method);
  if (!best && method == "HEAD") best = pick("GET");
  if (best) {
    matches(*best, path, &request);
    m.route = best;
    return m;
  }
  // 405 when another method's route matches the path.
  bool get = false;
  for (const Route& r : routes_) {
    if (!matches(r, path, nullptr)) continue;
    if (m.allow.find(r.method) == std::string::npos) {
      if (!m.allow.empty()) m.allow += ", ";
      m.allow += r.method;
    }
    get = get || r.method == "GET";
  }
  if (!m.allow.empty()) {
    m.method_not_allowed = true;
    if (get && m.allow.find("HEAD") == std::string::npos) m.allow += ", HEAD";
  }
  return m;
}

}  // namespace tulipa::http
