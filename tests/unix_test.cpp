// create_unix_server / create_unix_connection: the same stream transport over Unix-domain sockets.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "support/net_util.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

using namespace tulipa;
using namespace tulipa::test;

namespace {

class UnixTest : public ::testing::Test {
 protected:
  UnixTest() : path(::testing::TempDir() + "tulipa_unix_" + std::to_string(::getpid()) + ".sock") {
    ::unlink(path.c_str());
  }
  ~UnixTest() override {
    server.close();
    server.abort_clients();
    for (auto& l : logs) {
      if (l.transport) l.transport->abort();
    }
    settle(loop);
    ::unlink(path.c_str());
  }
  Log& log() { return logs.emplace_back(); }
  Transport* connect(Log& c, std::exception_ptr* err = nullptr) {
    bool done = false;
    Transport* result = nullptr;
    create_unix_connection(loop, recorder_factory(c), path, [&](Transport* t, std::exception_ptr e) {
      done = true;
      result = t;
      if (err) *err = e;
    });
    run_until(loop, [&] { return done; });
    return result;
  }

  std::string path;
  std::deque<Log> logs;
  EventLoop loop;
  Server server;
};

bool is_socket(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

TEST_F(UnixTest, EchoHalfCloseAndUnlinkOnClose) {
  Log& s = log();
  s.keep_open_on_eof = true;
  s.on_data = [](Log& l, std::span<const std::byte> d) { l.transport->write(d); };
  s.on_eof = [](Log& l) { l.transport->close(); };
  server = create_unix_server(loop, recorder_factory(s), path);
  EXPECT_TRUE(is_socket(path));
  ASSERT_EQ(server.sockets().size(), 1u);
  EXPECT_EQ(server.sockets()[0].host(), path);

  Log& c = log();
  c.keep_open_on_eof = true;
  Transport* t = connect(c);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->peername().host(), path);
  t->write("through the file system");
  ASSERT_TRUE(run_until(loop, [&] { return c.received == "through the file system"; }));
  t->write_eof();
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1 && s.lost == 1; }));
  EXPECT_EQ(c.eofs, 1);
  EXPECT_EQ(s.order, (std::vector<std::string>{"made", "data", "eof", "lost"}));
  server.close();
  EXPECT_FALSE(is_socket(path)) << "closing the server unlinks its path";
}

TEST_F(UnixTest, StaleSocketFileIsReplacedButOtherFilesAreNot) {
  // A socket file left by a server that died without cleaning up.
  {
    Server dead = create_unix_server(loop, [] { return std::make_unique<Echo>(); }, path);
    ASSERT_TRUE(is_socket(path));
    // Forget the path, as a crashed process would: make a hard link, let close() unlink, restore the link.
    std::string keep = path + ".kept";
    ASSERT_EQ(::link(path.c_str(), keep.c_str()), 0);
    dead.close();
    ASSERT_EQ(::rename(keep.c_str(), path.c_str()), 0);
  }
  ASSERT_TRUE(is_socket(path));
  server = create_unix_server(loop, [] { return std::make_unique<Echo>(); }, path);
  Log& c = log();
  ASSERT_NE(connect(c), nullptr);
  server.close();
  server.abort_clients();

  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  try {
    create_unix_server(loop, [] { return std::make_unique<Echo>(); }, path);
    ADD_FAILURE() << "a regular file was replaced";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EEXIST);
  }
}

TEST_F(UnixTest, AbstractNamespace) {
  std::string name = std::string(1, '\0') + "tulipa-test-" + std::to_string(::getpid());
  Log& s = log();
  s.on_data = [](Log& l, std::span<const std::byte> d) { l.transport->write(d); };
  server = create_unix_server(loop, recorder_factory(s), name);
  EXPECT_EQ(server.sockets()[0].host(), "@tulipa-test-" + std::to_string(::getpid()));
  path = name;
  Log& c = log();
  Transport* t = connect(c);
  ASSERT_NE(t, nullptr);
  t->write("abstract");
  ASSERT_TRUE(run_until(loop, [&] { return c.received == "abstract"; }));
  t->close();
  ASSERT_TRUE(run_until(loop, [&] { return c.lost == 1; }));
}

TEST_F(UnixTest, NoServerMeansAnError) {
  Log& c = log();
  std::exception_ptr err;
  EXPECT_EQ(connect(c, &err), nullptr);
  ASSERT_NE(err, nullptr);
  try {
    std::rethrow_exception(err);
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
  }
}

}  // namespace
