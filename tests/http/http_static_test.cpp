// Static files (static_files.hpp) over raw sockets: content types, validators, ranges, index files, and every way
// out of the root (.., %2e%2e, symbolic links) refused.
#include "tulipa/http/static_files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "loop_helpers.hpp"
#include "raw_client.hpp"
#include "tulipa/http/server.hpp"
#include "tulipa/loop.hpp"

namespace tulipa::http {
namespace {

using test::RawClient;
using test::RawResponse;
namespace fs = std::filesystem;

void write_file(const fs::path& p, const std::string& content) { std::ofstream(p, std::ios::binary) << content; }

struct HttpStaticTest : ::testing::Test {
  EventLoop loop;
  Server server;
  fs::path dir;  // holds root/ and secret.txt beside it
  fs::path root;
  std::string big;

  void SetUp() override {
    char tmpl[] = "/tmp/tulipa-static-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    root = dir / "root";
    fs::create_directories(root / "sub");
    write_file(root / "a.txt", "0123456789");
    write_file(root / "index.html", "<h1>home</h1>");
    write_file(root / "sub" / "style.css", "body{}");
    write_file(root / "sub" / "index.html", "<p>sub</p>");
    write_file(dir / "secret.txt", "secret");
    fs::create_symlink(dir / "secret.txt", root / "out-abs");
    fs::create_symlink("../secret.txt", root / "out-rel");
    fs::create_symlink("a.txt", root / "in");
    big.resize(3 << 20);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
    write_file(root / "big.bin", big);
    Router router;
    router.get("/", static_files(root.string()));
    router.get("/{path...}", static_files(root.string()));
    server = serve(loop, std::move(router), "127.0.0.1", 0);
  }
  void TearDown() override {
    server = Server();
    test::finish_loop(loop);
    fs::remove_all(dir);
  }
  RawResponse get(const std::string& target, const std::string& extra = "", bool head = false) {
    RawClient c(loop, server.sockets().at(0).port());
    c.send(std::string(head ? "HEAD " : "GET ") + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n");
    auto rs = c.responses(1, {head});
    return rs.empty() ? RawResponse{} : rs.front();
  }
  static std::string field(const RawResponse& r, const std::string& name) {
    const std::size_t at = r.head.find("\r\n" + name + ": ");
    if (at == std::string::npos) return {};
    const std::size_t start = at + name.size() + 4;
    return r.head.substr(start, r.head.find("\r\n", start) - start);
  }
};

TEST_F(HttpStaticTest, ServesFilesWithTypesAndValidators) {
  RawResponse r = get("/a.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "0123456789");
  EXPECT_EQ(field(r, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(field(r, "Accept-Ranges"), "bytes");
  EXPECT_FALSE(field(r, "ETag").empty());
  EXPECT_NE(field(r, "Last-Modified").find("GMT"), std::string::npos);
  r = get("/sub/style.css");
  EXPECT_EQ(field(r, "Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(get("/").body, "<h1>home</h1>");
  EXPECT_EQ(get("/sub/").body, "<p>sub</p>");
  EXPECT_EQ(get("/sub").body, "<p>sub</p>");
  EXPECT_EQ(get("/in").body, "0123456789");  // a link inside the root works
  EXPECT_EQ(get("/missing").status, 404);
  r = get("/a.txt", "", true);
  EXPECT_EQ(field(r, "Content-Length"), "10");
  EXPECT_EQ(r.body, "");
}

TEST_F(HttpStaticTest, ConditionalRequestsGet304) {
  const RawResponse r = get("/a.txt");
  const std::string etag = field(r, "ETag");
  EXPECT_EQ(get("/a.txt", "If-None-Match: " + etag + "\r\n").status, 304);
  EXPECT_EQ(get("/a.txt", "If-None-Match: \"other\", W/" + etag + "\r\n").status, 304);
  EXPECT_EQ(get("/a.txt", "If-None-Match: \"other\"\r\n").status, 200);
  EXPECT_EQ(get("/a.txt", "If-Modified-Since: " + field(r, "Last-Modified") + "\r\n").status, 304);
  EXPECT_EQ(get("/a.txt", "If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT\r\n").status, 200);
  // If-None-Match wins over If-Modified-Since
  EXPECT_EQ(get("/a.txt", "If-None-Match: \"x\"\r\nIf-Modified-Since: " + field(r, "Last-Modified") + "\r\n").status,
            200);
}

TEST_F(HttpStaticTest, SingleRanges) {
  RawResponse r = get("/a.txt", "Range: bytes=2-5\r\n");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "2345");
  EXPECT_EQ(field(r, "Content-Range"), "bytes 2-5/10");
  r = get("/a.txt", "Range: bytes=7-\r\n");
  EXPECT_EQ(r.body, "789");
  r = get("/a.txt", "Range: bytes=-3\r\n");
  EXPECT_EQ(r.body, "789");
  EXPECT_EQ(field(r, "Content-Range"), "bytes 7-9/10");
  r = get("/a.txt", "Range: bytes=5-100\r\n");
  EXPECT_EQ(r.body, "56789");
  r = get("/a.txt", "Range: bytes=10-\r\n");
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(field(r, "Content-Range"), "bytes */10");
  r = get("/a.txt", "Range: bytes=0-1,4-5\r\n");  // several ranges: the whole file
  EXPECT_EQ(r.status, 200);
  r = get("/a.txt", "Range: bytes=2-5\r\nIf-Range: \"stale\"\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "0123456789");
}

TEST_F(HttpStaticTest, NothingEscapesTheRoot) {
  for (const char* target : {"/../secret.txt", "/%2e%2e/secret.txt", "/sub/%2E%2E/%2e%2e/secret.txt",
                             "/sub/..%2fsecret.txt", "/a.txt%00", "/%zz"}) {
    const RawResponse r = get(target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(r.body.find("secret"), std::string::npos);
  }
  EXPECT_EQ(get("/out-abs").status, 404);
  EXPECT_EQ(get("/out-rel").status, 404);
}

TEST_F(HttpStaticTest, BigFilesAndPipelinedFiles) {
  RawClient c(loop, server.sockets().at(0).port());
  c.send(
      "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=1000000-1000009\r\n\r\n");
  const auto rs = c.responses(3);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_TRUE(rs[0].body == big);
  EXPECT_EQ(rs[1].body, "0123456789");
  EXPECT_EQ(rs[2].body, big.substr(1000000, 10));
}

}  // namespace
}  // namespace tulipa::http
