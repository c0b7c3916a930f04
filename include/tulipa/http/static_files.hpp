// Static files for the HTTP server: a handler for a route whose last segment is `{path...}` (or the whole path).
//
//   router.get("/static/{path...}", http::static_files("/srv/www"));
//   router.get("/{path...}", http::static_files("/srv/www"));   // a site; "/" itself: add a route for it too
//
// What it does: percent-decodes the path (an invalid escape or an encoded NUL or '/' is a 400); refuses any "..",
// encoded or not; opens the file with openat2(RESOLVE_BENEATH) below the root's directory descriptor, so neither
// ".." nor a symbolic link (absolute or relative) can lead outside the root (a link inside the root works);
// serves a directory's index file ("index.html" by default); sets Content-Type from the extension, Last-Modified,
// an ETag (from the modification time and size) and Accept-Ranges; answers If-None-Match and If-Modified-Since with
// 304, a single byte range ("bytes=a-b", "a-", "-n") with 206 and Content-Range, an unsatisfiable one with 416
// (a list of ranges gets the whole file: RFC 9110 lets a server ignore Range); an If-Range that does not match
// the ETag or date gets the whole file. Missing files, and anything that is not a regular file, are 404s.
// The body is sent with sendfile(2) (server.hpp).
#pragma once

#include <string>

#include "tulipa/http/router.hpp"

namespace tulipa::http {

struct StaticOptions {
  std::string index = "index.html";  // served for a directory; empty: directories are 404s
  std::string cache_control{};       // a Cache-Control value for every answer ("" adds none)
};

// The root is opened when this is called (std::system_error when it cannot be); the handler keeps it open.
SyncHandler static_files(std::string root, StaticOptions options = {});

// The content type for a file name's extension ("application/octet-stream" when unknown).
std::string_view content_type_for(std::string_view file_name) noexcept;

}  // namespace tulipa::http
