// The line chat (examples/chat/chat.hpp) in-process on port 0, driven by several real client connections.
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <string>

#include <gtest/gtest.h>

#include "../examples/chat/chat.hpp"
#include "support/net_util.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

using namespace tulipa;
using namespace tulipa::test;

namespace {

class ChatTest : public ::testing::Test {
 protected:
  explicit ChatTest(chat::ChatOptions o = {}) : room(o) {
    server = create_server(loop, room.factory(), "127.0.0.1", 0);
  }
  ~ChatTest() override {
    server.close();
    server.abort_clients();
    for (auto& c : clients) {
      if (c.transport) c.transport->abort();
    }
    settle(loop);
  }
  // A connected client whose welcome line arrived.
  Log& client(const std::string& nick = "") {
    Log& c = clients.emplace_back();
    EXPECT_NE(connect_to(loop, server.sockets().at(0), c), nullptr);
    EXPECT_TRUE(wait_for(c, "welcome"));
    if (!nick.empty()) {
      say(c, "/nick " + nick);
      EXPECT_TRUE(wait_for(c, "* you are " + nick + "\n"));
    }
    return c;
  }
  void say(Log& c, const std::string& line) { c.transport->write(line + "\n"); }
  bool wait_for(Log& c, const std::string& what) {
    return run_until(loop, [&] { return c.received.find(what) != std::string::npos || c.lost > 0; }) &&
           c.received.find(what) != std::string::npos;
  }

  EventLoop loop;
  chat::ChatRoom room;
  Server server;
  std::deque<Log> clients;
};

TEST_F(ChatTest, NicksBroadcastWhoAndQuit) {
  Log& alice = client("alice");
  Log& bob = client("bob");
  EXPECT_TRUE(wait_for(alice, "* bob joined\n"));
  Log& carol = client("carol");
  EXPECT_TRUE(wait_for(alice, "* carol joined\n"));
  EXPECT_TRUE(wait_for(bob, "* carol joined\n"));

  say(alice, "hello, room");
  EXPECT_TRUE(wait_for(bob, "<alice> hello, room\n"));
  EXPECT_TRUE(wait_for(carol, "<alice> hello, room\n"));
  say(alice, "/who");
  EXPECT_TRUE(wait_for(alice, "* online: alice, bob, carol\n"));
  EXPECT_EQ(alice.received.find("<alice>"), std::string::npos) << "a sender does not get its own line back";

  say(bob, "/nick alice");
  EXPECT_TRUE(wait_for(bob, "* nick alice is taken\n"));
  say(bob, "/nick b@d");
  EXPECT_TRUE(wait_for(bob, "* a nick is 1 to 32"));
  say(bob, "/nick robert");
  EXPECT_TRUE(wait_for(carol, "* bob is now robert\n"));

  say(carol, "/quit");
  EXPECT_TRUE(wait_for(carol, "* bye\n"));
  EXPECT_TRUE(run_until(loop, [&] { return carol.lost == 1; }));
  EXPECT_TRUE(wait_for(alice, "* carol left\n"));
  EXPECT_TRUE(wait_for(bob, "* carol left\n"));
  EXPECT_EQ(room.size(), 2u);
}

TEST_F(ChatTest, LinesNeedANickAndTelnetLineEndsWork) {
  Log& anon = client();
  Log& dave = client("dave");
  say(anon, "hi?");
  EXPECT_TRUE(wait_for(anon, "* pick a nick first"));
  anon.transport->write("/nick eve\r\nfrom telnet\r\n");
  EXPECT_TRUE(wait_for(dave, "<eve> from telnet\n"));
  say(dave, "/dance");
  EXPECT_TRUE(wait_for(dave, "* unknown command /dance"));
}

TEST_F(ChatTest, LongLinesAreRefusedAndTheNextLineWorks) {
  Log& frank = client("frank");
  Log& grace = client("grace");
  EXPECT_TRUE(wait_for(frank, "* grace joined"));
  // Longer than 4 KiB, sent in pieces so that the refusal comes before the newline arrives.
  frank.transport->write(std::string(3000, 'a'));
  frank.transport->write(std::string(3000, 'b'));
  EXPECT_TRUE(wait_for(frank, "* line too long (more than 4096 bytes); refused\n"));
  frank.transport->write(std::string(3000, 'c') + "\nshort one\n");
  EXPECT_TRUE(wait_for(grace, "<frank> short one\n"));
  EXPECT_EQ(grace.received.find("aaa"), std::string::npos);
  EXPECT_EQ(grace.received.find("ccc"), std::string::npos);
  // Exactly 4096 bytes is allowed.
  say(frank, std::string(4096, 'x'));
  EXPECT_TRUE(wait_for(grace, "<frank> " + std::string(4096, 'x') + "\n"));
}

class SlowChatTest : public ChatTest {
 protected:
  SlowChatTest() : ChatTest(chat::ChatOptions{.max_queue = 64 * 1024}) {}
};

// A client that stops reading is dropped once its queue passes the bound; the others keep getting every line.
TEST_F(SlowChatTest, AClientThatStopsReadingIsDisconnected) {
  Log& talker = client("talker");
  Log& listener = client("listener");
  // The slow client: a raw socket with a small receive buffer that never reads after joining.
  int slow = raw_connect(server.sockets().at(0));
  int small = 4096;
  ::setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_EQ(::write(slow, "/nick slow\n", 11), 11);
  ASSERT_TRUE(wait_for(talker, "* slow joined\n"));

  const std::string line(1000, 'm');
  int sent = 0;
  while (talker.received.find("* slow left (too slow)\n") == std::string::npos && sent < 10000) {
    say(talker, line + std::to_string(sent++));
    // Let the server run until the listener got this line: the talk goes on at the listener's pace.
    ASSERT_TRUE(wait_for(listener, "<talker> " + line + std::to_string(sent - 1) + "\n"));
  }
  EXPECT_NE(talker.received.find("* slow left (too slow)\n"), std::string::npos);
  EXPECT_LT(sent, 10000) << "the slow client was never dropped";
  EXPECT_TRUE(wait_for(listener, "* slow left (too slow)\n"));
  say(talker, "still here");
  EXPECT_TRUE(wait_for(listener, "<talker> still here\n"));
  EXPECT_EQ(room.size(), 2u);
  ::close(slow);
}

}  // namespace
