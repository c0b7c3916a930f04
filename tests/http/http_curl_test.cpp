// curl (Debian's) against our server: keep-alive reuse, chunked upload, HEAD, ranges, 100-continue. curl runs as a
// child process on the server's own loop (tulipa's subprocess API), so nothing blocks and nothing sleeps.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "loop_helpers.hpp"
#include "support/net_util.hpp"
#include "tulipa/http/server.hpp"
#include "tulipa/http/static_files.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/process.hpp"
#include "tulipa/task.hpp"

namespace tulipa::http {
namespace {

namespace fs = std::filesystem;

struct HttpCurlTest : ::testing::Test {
  EventLoop loop;
  Server server;
  fs::path dir;
  int connections = 0;
  tulipa::Server listener;

  void SetUp() override {
    char tmpl[] = "/tmp/tulipa-curl-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    std::ofstream(dir / "digits.txt") << "0123456789";
    Router router;
    router.get("/", [](Request&) { return Response(200, "Hello, World!"); });
    router.post("/echo", [](Request& r) { return Response(200, std::string(r.body())); });
    router.get("/files/{path...}", static_files(dir.string()));
    server = make_server(loop, std::move(router));
    // Count the connections the server accepts (keep-alive reuse means one for several requests).
    listener = create_server(
        loop,
        [this, f = server.factory()] {
          ++connections;
          return f();
        },
        "127.0.0.1", 0);
  }
  void TearDown() override {
    listener.close();
    server = Server();
    test::finish_loop(loop);
    fs::remove_all(dir);
  }
  std::string url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(listener.sockets().at(0).port()) + path;
  }
  // Runs curl with `args`; returns {stdout, stderr}.
  std::pair<std::string, std::string> curl(std::vector<std::string> args) {
    args.insert(args.begin(), {"curl", "-sS", "--max-time", "20"});
    std::pair<std::string, std::string> out;
    bool done = false;
    auto task = create_task(loop, [&, args]() -> Coro<void> {
      Process p = spawn_process(loop, args, {.std_out = Stdio::pipe(), .std_err = Stdio::pipe()});
      CommunicateResult r = co_await p.communicate();
      out.first = std::string(r.std_out.view());
      out.second = std::string(r.std_err.view());
      done = true;
    });
    EXPECT_TRUE(test::run_until(loop, [&] { return done; }));
    return out;
  }
};

TEST_F(HttpCurlTest, KeepAliveReusesOneConnection) {
  const auto [out, err] = curl({"-v", url("/"), url("/"), url("/")});
  EXPECT_EQ(out, "Hello, World!Hello, World!Hello, World!");
  EXPECT_NE(err.find("Re-using existing connection"), std::string::npos) << err;
  EXPECT_EQ(connections, 1);
}

TEST_F(HttpCurlTest, ChunkedUpload) {
  const auto [out, err] = curl({"-H", "Transfer-Encoding: chunked", "--data-binary", "chunked body", url("/echo")});
  EXPECT_EQ(out, "chunked body") << err;
}

TEST_F(HttpCurlTest, Head) {
  const auto [out, err] = curl({"-I", url("/")});
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out << err;
  EXPECT_NE(out.find("Content-Length: 13\r\n"), std::string::npos);
}

TEST_F(HttpCurlTest, Ranges) {
  EXPECT_EQ(curl({"-r", "2-5", url("/files/digits.txt")}).first, "2345");
  EXPECT_EQ(curl({"-r", "-3", url("/files/digits.txt")}).first, "789");
  const auto [out, err] = curl({"-o", "/dev/null", "-w", "%{http_code}", "-r", "50-", url("/files/digits.txt")});
  EXPECT_EQ(out, "416") << err;
}

TEST_F(HttpCurlTest, ExpectContinue) {
  const std::string body(5000, 'x');
  const auto [out, err] = curl({"-v", "-H", "Expect: 100-continue", "--data-binary", body, url("/echo")});
  EXPECT_EQ(out, body);
  EXPECT_NE(err.find("HTTP/1.1 100 Continue"), std::string::npos) << err;
}

}  // namespace
}  // namespace tulipa::http
