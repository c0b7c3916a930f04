// The chat's core with no sockets: a Hub over a MemoryStore, driven by test clients that record what they are sent.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/hub.hpp"
#include "core/text.hpp"
#include "support/net_util.hpp"
#include "tulipa/loop.hpp"

using namespace chat;
using tulipa::test::run_until;
using tulipa::test::settle;

namespace {

// A connection as the hub sees it: records every write; `unsent` plays the bytes its transport could not send.
struct TestClient final : Client {
  WireFormat fmt = WireFormat::line;
  std::string received;
  std::vector<std::string> writes;
  std::size_t unsent = 0;
  bool closed = false;
  Session* session = nullptr;
  std::vector<const TestClient*>* order = nullptr;  // when set: where every client's writes are noted, in order

  WireFormat format() const noexcept override { return fmt; }
  void write(std::string_view batch) override {
    writes.emplace_back(batch);
    received += batch;
    if (order) order->push_back(this);
  }
  std::size_t write_buffer_size() const noexcept override { return unsent; }
  void close() override { closed = true; }
  bool saw(std::string_view s) const { return received.find(s) != std::string::npos; }
};

Limits test_limits() {
  Limits l;
  l.idle = std::chrono::seconds(0);
  l.history = 3;
  return l;
}

class HubTest : public ::testing::Test {
 protected:
  explicit HubTest(Limits l = test_limits())
      : loop(tulipa::LoopOptions{.clock = &clock}),
        store(loop),
        hub(loop, store, l, [this](std::string_view line) { logged.emplace_back(line); }) {}
  ~HubTest() override {
    for (auto& c : clients) {
      if (c.session) hub.disconnect(*c.session);
    }
    settle(loop);
  }

  TestClient& connect(const std::string& nick = "", const Hello& hello = {}, std::string ip = "10.0.0.1") {
    TestClient& c = clients.emplace_back();
    c.session = &hub.connect(c, ip, hello);
    if (!nick.empty()) say(c, "/nick " + nick);
    settle(loop);
    return c;
  }
  void say(TestClient& c, std::string_view line) { hub.receive(*c.session, line); }
  void drop(TestClient& c) {
    hub.disconnect(*c.session);
    c.session = nullptr;
  }
  bool logged_line(std::string_view s) const {
    for (const auto& l : logged) {
      if (l.find(s) != std::string::npos) return true;
    }
    return false;
  }

  tulipa::VirtualClock clock;
  tulipa::EventLoop loop;
  MemoryStore store;
  std::vector<std::string> logged;
  Hub hub;
  std::deque<TestClient> clients;
};

TEST_F(HubTest, AClientStartsInTheDefaultRoomUnderAGuestNameAndSeesTheMembers) {
  TestClient& a = connect();
  EXPECT_TRUE(a.saw("* you are guest-1\n"));
  EXPECT_TRUE(a.saw("* in #lobby: guest-1\n"));
  EXPECT_EQ(a.session->room(), "lobby");
  TestClient& b = connect();
  EXPECT_TRUE(a.saw("* guest-2 joined #lobby\n"));
  EXPECT_TRUE(b.saw("* in #lobby: guest-1, guest-2\n"));
  EXPECT_TRUE(logged_line("connect guest-2 from 10.0.0.1"));
  EXPECT_TRUE(logged_line("join guest-2 #lobby"));
}

TEST_F(HubTest, NicksAreUniqueWhateverTheirCase) {
  TestClient& a = connect("alice");
  TestClient& b = connect();
  for (std::string_view taken : {"/nick Alice", "/nick ALICE", "/nick alice"}) {
    b.received.clear();
    say(b, taken);
    settle(loop);
    EXPECT_TRUE(b.saw("is taken")) << taken;
    EXPECT_EQ(b.session->nick(), "guest-2");
  }
  // The rules: a letter first, letters/digits/_/-, a bounded length, guest-... kept for the server.
  for (std::string_view bad : {"/nick 1abc", "/nick a b", "/nick al\x1b[2Jice", "/nick guest-7", "/nick GUEST-1",
                               "/nick abcdefghijklmnopqrstuvwxy"}) {
    b.received.clear();
    say(b, bad);
    settle(loop);
    EXPECT_TRUE(b.saw("! ")) << bad;
    EXPECT_EQ(b.session->nick(), "guest-2") << bad;
  }
  say(b, "/nick Bob_2-x");
  settle(loop);
  EXPECT_TRUE(b.saw("* you are Bob_2-x\n"));
  EXPECT_TRUE(a.saw("* guest-2 is now Bob_2-x\n"));
  // A nick given up is free again.
  say(a, "/nick carol");
  say(b, "/nick ALICE");
  settle(loop);
  EXPECT_EQ(b.session->nick(), "ALICE");
}

TEST_F(HubTest, AMessageIsBroadcastOnlyAfterTheStoreAcceptedIt) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  b.received.clear();
  say(a, "hello");
  EXPECT_FALSE(b.saw("hello"));  // not before the store's answer
  ASSERT_EQ(store.messages().size(), 1u);
  settle(loop);
  EXPECT_TRUE(b.saw("#lobby <alice> hello\n"));
  EXPECT_TRUE(a.saw("#lobby <alice> hello\n"));  // the sender sees it once it is stored

  store.set_failing(true);
  b.received.clear();
  say(a, "lost");
  settle(loop);
  EXPECT_FALSE(b.saw("lost"));
  EXPECT_TRUE(a.saw("your message was not sent"));
  EXPECT_TRUE(logged_line("error: store refused"));
}

TEST_F(HubTest, WhatAMemberIsSentDuringOnePassLeavesInOneWrite) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  std::size_t before = b.writes.size();
  for (int i = 0; i < 5; ++i) say(a, "line " + std::to_string(i));
  settle(loop);
  ASSERT_EQ(b.writes.size(), before + 1);
  for (int i = 0; i < 5; ++i) EXPECT_NE(b.writes.back().find("line " + std::to_string(i)), std::string::npos);
}

TEST_F(HubTest, RoomsJoinLeaveWhoAndRooms) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  say(a, "/join #Dev");
  settle(loop);
  EXPECT_TRUE(b.saw("* alice left #lobby\n"));
  EXPECT_TRUE(a.saw("* alice joined #dev\n"));
  EXPECT_TRUE(a.saw("* in #dev: alice\n"));
  say(b, "/join dev");
  settle(loop);
  EXPECT_TRUE(a.saw("* bob joined #dev\n"));
  say(a, "/who");
  say(a, "/rooms");
  settle(loop);
  EXPECT_TRUE(a.saw("* in #dev: alice, bob\n"));
  EXPECT_TRUE(a.saw("* rooms: #dev (2)\n"));  // empty rooms are not listed
  say(a, "in dev");
  settle(loop);
  EXPECT_TRUE(b.saw("#dev <alice> in dev\n"));
  say(a, "/leave");
  settle(loop);
  EXPECT_EQ(a.session->room(), "lobby");
  EXPECT_TRUE(b.saw("* alice left #dev\n"));
  a.received.clear();
  say(a, "/leave");
  say(a, "/join bad room!");
  settle(loop);
  EXPECT_TRUE(a.saw("! you are in #lobby; /quit leaves the server\n"));
  EXPECT_TRUE(a.saw("! a room name has only letters"));
}

TEST_F(HubTest, JoinReplaysTheLastMessagesWithTheirTimes) {
  TestClient& a = connect("alice");
  for (int i = 1; i <= 5; ++i) say(a, "m" + std::to_string(i));
  settle(loop);
  TestClient& c = connect();
  EXPECT_TRUE(c.saw("* the last 3 messages of #lobby:\n"));
  EXPECT_FALSE(c.saw("<alice> m2\n"));
  std::size_t m3 = c.received.find("<alice> m3\n"), m5 = c.received.find("<alice> m5\n");
  ASSERT_NE(m3, std::string::npos);
  ASSERT_NE(m5, std::string::npos);
  EXPECT_LT(m3, m5);
  // "HH:MM:SS #lobby <alice> m3"
  std::string line = c.received.substr(c.received.rfind('\n', m3) + 1, m3 - c.received.rfind('\n', m3) - 1);
  ASSERT_EQ(line.size(), std::string("00:00:00 #lobby ").size()) << line;
  EXPECT_EQ(line[2], ':');
  EXPECT_EQ(line[5], ':');
}

TEST_F(HubTest, AReconnectingClientCatchesUpFromTheLastIdItSawWithoutGapOrDuplicate) {
  TestClient& a = connect("alice");
  for (int i = 1; i <= 3; ++i) say(a, "m" + std::to_string(i));
  settle(loop);
  const auto& stored = store.messages();
  ASSERT_EQ(stored.size(), 3u);
  TestClient& b = connect("", Hello{.nick = "bob", .room = "lobby", .after_id = stored[1].id});
  EXPECT_EQ(b.session->nick(), "bob");
  EXPECT_TRUE(b.saw("* the last 1 message of #lobby:\n"));
  EXPECT_FALSE(b.saw("<alice> m2\n"));
  EXPECT_TRUE(b.saw("<alice> m3\n"));
  TestClient& c = connect("", Hello{.nick = "ALICE", .after_id = stored[2].id});
  EXPECT_FALSE(c.saw("the last"));
  EXPECT_TRUE(c.saw("! nick ALICE: that nick is taken\n"));
  EXPECT_TRUE(c.session->nick().starts_with("guest-"));
}

TEST_F(HubTest, JsonClientsGetEveryUserStringEscaped) {
  TestClient& a = connect("alice");
  TestClient& w = clients.emplace_back();
  w.fmt = WireFormat::json;
  w.session = &hub.connect(w, "10.0.0.2");
  settle(loop);
  EXPECT_TRUE(w.saw("{\"type\":\"you_are\",\"nick\":\"guest-2\"}\n"));
  say(a, "<img src=x onerror=alert(1)> \"quoted\" \\ ");
  settle(loop);
  EXPECT_TRUE(w.saw("\"text\":\"<img src=x onerror=alert(1)> \\\"quoted\\\" \\\\ \""));
  EXPECT_TRUE(w.saw("{\"type\":\"message\",\"id\":1,"));
}

TEST_F(HubTest, PrivateMessagesAndActions) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  TestClient& c = connect("carol");
  say(a, "/msg BOB psst, a secret");
  say(a, "/me waves");
  say(a, "/msg nobody hi");
  say(a, "/msg bob");
  settle(loop);
  EXPECT_TRUE(b.saw(" [alice -> you] psst, a secret\n"));
  EXPECT_TRUE(a.saw(" [you -> bob] psst, a secret\n"));
  EXPECT_FALSE(c.saw("secret"));
  EXPECT_TRUE(c.saw("#lobby * alice waves\n"));
  EXPECT_TRUE(a.saw("! nobody is called nobody\n"));
  EXPECT_TRUE(a.saw("! usage: /msg NICK TEXT\n"));
  // Both are kept: the private one with its recipient and no room.
  ASSERT_EQ(store.messages().size(), 2u);
  EXPECT_EQ(store.messages()[0].to, "bob");
  EXPECT_EQ(store.messages()[0].nick, "alice");
  EXPECT_EQ(store.messages()[0].room, "");
  EXPECT_EQ(store.messages()[0].text, "psst, a secret");
  EXPECT_TRUE(store.messages()[1].action);
}

TEST_F(HubTest, APrivateMessageIsDeliveredOnlyAfterTheStoreAcceptedIt) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  say(a, "/msg bob first");
  EXPECT_FALSE(b.saw("first"));  // not before the store's answer
  settle(loop);
  EXPECT_TRUE(b.saw(" [alice -> you] first\n"));
  store.set_failing(true);
  say(a, "/msg bob second");
  settle(loop);
  EXPECT_FALSE(b.saw("second"));
  EXPECT_FALSE(a.saw("[you -> bob] second"));
  EXPECT_TRUE(a.saw("your message was not sent"));
  store.set_failing(false);
  // The recipient left between the send and the store's answer: the sender is told.
  say(a, "/msg bob third");
  drop(b);
  settle(loop);
  EXPECT_TRUE(a.saw("! bob left before your message reached them\n"));
}

TEST_F(HubTest, CatchUpBeyondTheRingReadsTheStoreWithoutGapOrDuplicate) {
  // The ring holds 3 messages (test_limits); a page that saw only m2 of m1..m8 gets m3..m8 from the store.
  TestClient& a = connect("alice");
  for (int i = 1; i <= 8; ++i) say(a, "m" + std::to_string(i));
  settle(loop);
  std::uint64_t m2 = store.messages()[1].id;
  // m9 is broadcast while the store is being read for bob (he gets it from the history, not live), m10 after.
  say(a, "m9");
  TestClient& b = clients.emplace_back();
  b.session = &hub.connect(b, "10.0.0.1", Hello{.nick = "bob", .room = "lobby", .after_id = m2});
  say(a, "m10");
  settle(loop);
  EXPECT_TRUE(b.saw("* the last 7 messages of #lobby:\n"));  // m3..m9; m10 follows live
  std::size_t at = 0;
  for (int i = 3; i <= 10; ++i) {
    std::string line = "<alice> m" + std::to_string(i) + "\n";
    std::size_t found = b.received.find(line, at);
    ASSERT_NE(found, std::string::npos) << line << b.received;
    EXPECT_EQ(b.received.find(line, found + 1), std::string::npos) << "twice: " << line;
    at = found;
  }
  EXPECT_FALSE(b.saw("<alice> m2\n"));
}

TEST_F(HubTest, PrivateMessagesAreNotReplayedAsRoomHistory) {
  TestClient& a = connect("alice");
  connect("bob");
  say(a, "/msg bob secret");
  say(a, "public");
  settle(loop);
  TestClient& c = connect("", Hello{.after_id = 0});
  EXPECT_TRUE(c.saw("<alice> public\n"));
  EXPECT_FALSE(c.saw("secret"));
}

TEST_F(HubTest, HelpUnknownCommandsAndDoubleSlash) {
  TestClient& a = connect("alice");
  say(a, "/help");
  say(a, "/frobnicate x");
  say(a, "//etc/passwd is a path");
  settle(loop);
  EXPECT_TRUE(a.saw("* /msg NICK TEXT"));
  EXPECT_TRUE(a.saw("! unknown command /frobnicate; /help lists the commands\n"));
  EXPECT_TRUE(a.saw("<alice> /etc/passwd is a path\n"));
}

TEST_F(HubTest, ControlCharactersAndEscapesNeverReachOthers) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  say(a, "\x1b[2J\x1b[H* the server is shutting down\r\x07\x9b\xff\xe2\x80\xae");
  settle(loop);
  std::size_t at = b.received.find("<alice> ");
  ASSERT_NE(at, std::string::npos);
  std::string line = b.received.substr(at, b.received.find('\n', at) - at);
  EXPECT_EQ(line, "<alice> \\x1b[2J\\x1b[H* the server is shutting down\\x0d\\x07\xef\xbf\xbd\xef\xbf\xbd\\u{202e}");
  for (char ch : b.received) EXPECT_TRUE(ch == '\n' || static_cast<unsigned char>(ch) >= 0x20);
}

TEST_F(HubTest, AnOverlongLineIsRefusedWithItsLimit) {
  TestClient& a = connect("alice");
  say(a, std::string(hub.limits().max_line + 1, 'x'));
  settle(loop);
  EXPECT_TRUE(a.saw("! line too long (more than 2048 bytes); it was dropped\n"));
  EXPECT_TRUE(store.messages().empty());
}

TEST_F(HubTest, QuitTellsTheRoomWhy) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  say(a, "/quit see you \x1b[31m");
  settle(loop);
  EXPECT_TRUE(a.saw("* bye\n"));
  EXPECT_TRUE(a.closed);
  EXPECT_TRUE(b.saw("* alice left #lobby (quit: see you \\x1b[31m)\n"));
  drop(a);
  settle(loop);
}

TEST_F(HubTest, AClientThatStopsReadingIsDisconnectedWithAReasonAndTheOthersGoOn) {
  TestClient& a = connect("alice");
  TestClient& slow = connect("slow");
  TestClient& b = connect("bob");
  slow.unsent = hub.limits().max_queue - 10;  // its transport holds almost the whole budget
  say(a, "this does not fit");
  settle(loop);
  EXPECT_TRUE(slow.closed);
  EXPECT_TRUE(slow.saw("! disconnected: too slow: "));
  EXPECT_FALSE(slow.saw("does not fit"));
  EXPECT_TRUE(b.saw("<alice> this does not fit\n"));
  EXPECT_TRUE(b.saw("* slow left #lobby (too slow: "));
  EXPECT_TRUE(logged_line("kick slow from 10.0.0.1: too slow"));
  drop(slow);
  say(a, "still here");
  settle(loop);
  EXPECT_TRUE(b.saw("<alice> still here\n"));
}

TEST_F(HubTest, ConnectionsPerAddressAndInTotalAreBounded) {
  Limits l = test_limits();
  l.max_per_ip = 2;
  l.max_clients = 3;
  MemoryStore s(loop);
  Hub h(loop, s, l, nullptr);
  TestClient c[3];
  EXPECT_FALSE(h.admit("10.0.0.1"));
  h.connect(c[0], "10.0.0.1");
  h.connect(c[1], "10.0.0.1");
  EXPECT_EQ(h.admit("10.0.0.1").value_or(""), "too many connections from 10.0.0.1 (at most 2)");
  EXPECT_FALSE(h.admit("10.0.0.2"));
  Session& third = h.connect(c[2], "10.0.0.2");
  EXPECT_EQ(h.admit("10.0.0.3").value_or(""), "the server is full (3 clients)");
  h.disconnect(third);
  EXPECT_FALSE(h.admit("10.0.0.3"));
  h.shutdown("bye");
  EXPECT_EQ(h.admit("10.0.0.3").value_or(""), "the server is shutting down");
  settle(loop);
}

TEST_F(HubTest, ShutdownTellsEveryClientAndClosesThem) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  hub.shutdown("the server is shutting down");
  settle(loop);
  for (TestClient* c : {&a, &b}) {
    EXPECT_TRUE(c->closed);
    EXPECT_TRUE(c->received.ends_with("! the server is shutting down\n"));
  }
}

TEST_F(HubTest, AMessageStoredAfterItsSenderLeftIsStillDelivered) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  say(a, "parting words");
  drop(a);
  settle(loop);
  EXPECT_TRUE(b.saw("<alice> parting words\n"));
}

// --- memory: big rooms cost O(members) bytes to fill, idle members hold no buffer

Limits crowd_limits() {
  Limits l = test_limits();
  l.announce_max = 3;
  l.names_on_join = 2;
  l.names_max = 3;
  return l;
}

class CrowdTest : public HubTest {
 protected:
  CrowdTest() : HubTest(crowd_limits()) {}
};

TEST_F(CrowdTest, BigRoomsAnnounceNoJoinsOrLeavesAndSendAPartOfTheNames) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  TestClient& c = connect("carol");
  EXPECT_TRUE(a.saw("* guest-3 joined #lobby\n"));                     // three members: announced
  EXPECT_TRUE(c.saw("* in #lobby (3): alice, guest-3 and 1 more\n"));  // the joiner is among the names
  TestClient& d = connect("dave");
  settle(loop);
  EXPECT_FALSE(a.saw("guest-4 joined"));  // four: not announced
  EXPECT_TRUE(d.saw("* in #lobby (4): alice, guest-4 and 2 more\n"));
  say(a, "/who");
  settle(loop);
  EXPECT_TRUE(a.saw(" and 1 more\n"));  // names_max names
  drop(d);
  settle(loop);
  EXPECT_FALSE(a.saw("dave left"));  // it was the fourth
  drop(c);
  settle(loop);
  EXPECT_TRUE(a.saw("* carol left #lobby\n"));
  // The page gets the count beside the names.
  TestClient& web = clients.emplace_back();
  web.fmt = WireFormat::json;
  web.session = &hub.connect(web, "10.0.0.2");
  settle(loop);
  EXPECT_TRUE(web.saw(",\"count\":3}")) << web.received;
  EXPECT_TRUE(b.saw("* guest-5 joined #lobby\n"));
}

Limits fair_limits() {
  Limits l = test_limits();
  l.writes_per_pass = 2;
  return l;
}

class FairTest : public HubTest {
 protected:
  FairTest() : HubTest(fair_limits()) {}
};

// A pass writes at most writes_per_pass members, each room with members waiting getting its share: a broadcast to
// a crowded room takes several passes, a member of another room is written in the first all the same, and a member
// that waits while it is sent more gets it all in one write.
TEST_F(FairTest, ACrowdedRoomIsWrittenAFewMembersAPassWithoutHoldingOtherRooms) {
  std::vector<TestClient*> crowd;
  for (int i = 0; i < 5; ++i) {
    crowd.push_back(&connect("c" + std::to_string(i)));
    say(*crowd.back(), "/join crowd");
  }
  TestClient& quiet = connect("quiet");
  say(quiet, "/join quiet");
  settle(loop);
  std::vector<const TestClient*> order;
  for (TestClient& c : clients) {
    c.order = &order;
    c.writes.clear();
  }
  say(*crowd[0], "first");
  say(quiet, "hello");
  // The crowd's five members were sent "first" before quiet was sent "hello": one of them, and quiet, go first.
  ASSERT_TRUE(run_until(loop, [&] { return order.size() >= 2; }));
  EXPECT_EQ(order, (std::vector<const TestClient*>{crowd[0], &quiet}));
  // A member written already that is sent more queues up behind those still waiting.
  say(*crowd[0], "second");
  ASSERT_TRUE(run_until(loop, [&] { return order.size() >= 9; }));
  settle(loop);
  EXPECT_EQ(order, (std::vector<const TestClient*>{crowd[0], &quiet, crowd[1], crowd[2], crowd[3], crowd[4], crowd[0],
                                                   crowd[1], crowd[2]}));
  // crowd[3] and crowd[4] were still waiting when "second" came: both lines left in their one write.
  for (TestClient* c : {crowd[3], crowd[4]}) {
    ASSERT_EQ(c->writes.size(), 1u);
    EXPECT_NE(c->writes[0].find("<c0> first\n"), std::string::npos) << c->writes[0];
    EXPECT_NE(c->writes[0].find("<c0> second\n"), std::string::npos) << c->writes[0];
  }
  EXPECT_EQ(quiet.writes.size(), 1u);
}

Limits early_write_limits() {
  Limits l = test_limits();
  l.writes_per_pass = 1;
  l.max_queue = 2048;
  return l;
}

class EarlyWriteTest : public HubTest {
 protected:
  EarlyWriteTest() : HubTest(early_write_limits()) {}
};

// Members waiting for their turn gather what they are sent; one that gathers a quarter of its queue is written at
// once, not taken for a slow reader (ten lines of 220 bytes in one pass pass max_queue here: all three were
// disconnected before).
TEST_F(EarlyWriteTest, AMemberWaitingItsTurnIsWrittenEarlyNotDisconnected) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  TestClient& c = connect("carol");
  for (TestClient* t : {&a, &b, &c}) t->writes.clear();
  for (int i = 0; i < 10; ++i) say(a, "line" + std::to_string(i) + " " + std::string(200, 'x'));
  settle(loop);
  for (TestClient* t : {&a, &b, &c}) {
    EXPECT_FALSE(t->closed) << t->session->nick();
    EXPECT_TRUE(t->saw("<alice> line9 ")) << t->session->nick();
    EXPECT_GT(t->writes.size(), 1u) << t->session->nick();  // written as its output grew
    for (const std::string& w : t->writes) EXPECT_LE(w.size(), 512u + 250u);
  }
}

TEST_F(HubTest, IdleMembersGiveTheirOutputBufferBack) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  say(a, std::string(200, 'x'));  // a message longer than a string's inline space
  settle(loop);
  ASSERT_TRUE(b.saw("xxxxx"));
  EXPECT_GT(b.session->held_bytes(), 0u);
  tulipa::TimePoint written = loop.time();
  clock.set_auto_advance(true);
  ASSERT_TRUE(run_until(loop, [&] { return loop.time() - written >= std::chrono::seconds(2); }));
  EXPECT_GT(b.session->held_bytes(), 0u);  // written during the last trim period: kept (no allocation per pass)
  ASSERT_TRUE(run_until(loop, [&] { return b.session->held_bytes() == 0; }));  // idle for a whole period: given back
  EXPECT_LE(loop.time() - written, std::chrono::seconds(4));
  EXPECT_EQ(a.session->held_bytes(), 0u);
  say(a, std::string(200, 'y'));  // and it still works
  settle(loop);
  EXPECT_TRUE(b.saw("yyyyy"));
}

// --- flood control and idle time, on the loop's virtual clock

Limits flood_limits() {
  Limits l = test_limits();
  l.flood_rate = 10;
  l.flood_burst = 3;
  l.flood_warn = 2;
  l.flood_kick = 4;
  return l;
}

class FloodTest : public HubTest {
 protected:
  FloodTest() : HubTest(flood_limits()) {}
};

TEST_F(FloodTest, ASenderIsSlowedThenWarnedThenDisconnected) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  using std::chrono::milliseconds;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(hub.pace(*a.session, 5), tulipa::Duration::zero());  // the burst
  EXPECT_EQ(hub.pace(*a.session, 5), milliseconds(100));  // slowed: one token a tenth of a second
  settle(loop);
  EXPECT_FALSE(a.saw("too fast"));
  EXPECT_EQ(hub.pace(*a.session, 5), milliseconds(200));
  settle(loop);
  EXPECT_TRUE(a.saw("! you are sending too fast: slow down or you will be disconnected\n"));
  EXPECT_TRUE(logged_line("warn alice from 10.0.0.1: flooding"));
  EXPECT_GT(hub.pace(*a.session, 5), tulipa::Duration::zero());
  EXPECT_FALSE(a.closed);
  hub.pace(*a.session, 5);
  EXPECT_TRUE(a.session->closing());
  settle(loop);
  EXPECT_TRUE(a.closed);
  EXPECT_TRUE(a.saw("! disconnected: flooding: more than 10 lines (or 1600 bytes) a second\n"));
  EXPECT_TRUE(b.saw("* alice left #lobby (flooding: more than 10 lines (or 1600 bytes) a second)\n"));
}

// Bytes count as well as lines: a line of 3 x flood_line_bytes costs what 3 short lines cost, so a client writing
// a few huge lines is slowed, warned and disconnected as one writing many tiny ones.
TEST_F(FloodTest, HugeLinesAreSlowedLikeAsManyShortLines) {
  TestClient& a = connect("alice");
  TestClient& b = connect("bob");
  const std::size_t huge = 3 * hub.limits().flood_line_bytes;
  using std::chrono::milliseconds;
  EXPECT_EQ(hub.pace(*a.session, huge), tulipa::Duration::zero());  // the whole burst at once
  EXPECT_EQ(hub.pace(*a.session, huge), milliseconds(300));         // waits for three tokens
  for (int i = 0; i < 3; ++i) EXPECT_EQ(hub.pace(*b.session, 1), tulipa::Duration::zero());
  EXPECT_EQ(hub.pace(*b.session, 1), milliseconds(100));
  EXPECT_EQ(hub.pace(*b.session, 1), milliseconds(200));
  EXPECT_EQ(hub.pace(*b.session, 1), milliseconds(300));  // the same wait after the same cost
  settle(loop);
  EXPECT_TRUE(a.saw("! you are sending too fast"));  // three tokens waited: past flood_warn (2)
  EXPECT_TRUE(b.saw("! you are sending too fast"));
  EXPECT_FALSE(a.session->closing());
  hub.pace(*a.session, huge);  // six tokens waited: past flood_kick (4)
  EXPECT_TRUE(a.session->closing());
  hub.pace(*b.session, 1);  // four
  EXPECT_TRUE(b.session->closing());
  settle(loop);
  EXPECT_TRUE(a.saw("! disconnected: flooding: more than 10 lines (or 1600 bytes) a second\n"));
}

TEST_F(FloodTest, ALineCostsOneTokenOrItsSizeInLines) {
  EXPECT_EQ(FloodGate::cost(0, 160), 1.0);
  EXPECT_EQ(FloodGate::cost(160, 160), 1.0);
  EXPECT_EQ(FloodGate::cost(320, 160), 2.0);
  EXPECT_EQ(FloodGate::cost(2048, 0), 2048.0);  // no zero division: a line_bytes of 0 counts bytes
}

TEST_F(FloodTest, ASenderThatPausesStartsOver) {
  TestClient& a = connect("alice");
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 3; ++i) hub.pace(*a.session, 5);
    EXPECT_EQ(hub.pace(*a.session, 5), std::chrono::milliseconds(100));  // one strike each round
    clock.advance(std::chrono::seconds(1));                              // the bucket fills again
  }
  EXPECT_FALSE(a.session->closing());
  settle(loop);
  EXPECT_FALSE(a.saw("too fast"));
}

Limits idle_limits() {
  Limits l = test_limits();
  l.idle = std::chrono::seconds(10);
  return l;
}

class IdleTest : public HubTest {
 protected:
  IdleTest() : HubTest(idle_limits()) {}
};

TEST_F(IdleTest, ASilentClientIsDisconnectedAndAnActiveOneIsNot) {
  TestClient& quiet = connect();
  TestClient& busy = connect();
  clock.set_auto_advance(true);
  // The busy one talks every 5 virtual seconds.
  tulipa::TimerHandle talk;
  std::function<void()> tick = [&] {
    if (busy.session) say(busy, "/who");
    talk = loop.call_later(std::chrono::seconds(5), tick);
  };
  tick();
  ASSERT_TRUE(run_until(loop, [&] { return quiet.closed; }));
  talk.cancel();
  settle(loop);
  EXPECT_TRUE(quiet.saw("! disconnected: idle for 10 s\n"));
  EXPECT_FALSE(busy.closed);
  EXPECT_TRUE(busy.saw("* guest-1 left #lobby (idle for 10 s)\n"));
}

// --- the text rules

TEST(ChatText, SanitizeKeepsTextAndEscapesControls) {
  EXPECT_EQ(sanitize("héllo wörld ✓ 😀"), "héllo wörld ✓ 😀");
  EXPECT_EQ(sanitize("a\tb"), "a b");
  EXPECT_EQ(sanitize("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(sanitize("a\nb\rc"), "a\\x0ab\\x0dc");
  EXPECT_EQ(sanitize(std::string_view("\0\x7f", 2)), "\\x00\\x7f");
  EXPECT_EQ(sanitize("\xc2\x9b"), "\\u{009b}");                                 // C1 CSI
  EXPECT_EQ(sanitize("\xe2\x80\xae!"), "\\u{202e}!");                           // right-to-left override
  EXPECT_EQ(sanitize("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");                  // overlong '/'
  EXPECT_EQ(sanitize("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
  EXPECT_EQ(sanitize("\xf4\x90\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // above U+10FFFF
  EXPECT_EQ(sanitize("ab\xe2\x82"), "ab\xef\xbf\xbd\xef\xbf\xbd");                              // truncated at the end
}

TEST(ChatText, NickAndRoomRules) {
  EXPECT_TRUE(nick_error("alice", 24).empty());
  EXPECT_TRUE(nick_error("A-b_9", 24).empty());
  EXPECT_FALSE(nick_error("", 24).empty());
  EXPECT_FALSE(nick_error("-x", 24).empty());
  EXPECT_FALSE(nick_error("al ice", 24).empty());
  EXPECT_FALSE(nick_error("ålice", 24).empty());
  EXPECT_FALSE(nick_error("abcde", 4).empty());
  EXPECT_FALSE(nick_error("Guest-3", 24).empty());
  EXPECT_TRUE(nick_error("guesthouse", 24).empty());
  EXPECT_TRUE(room_error("#dev", 32).empty());
  EXPECT_TRUE(room_error("dev-2", 32).empty());
  EXPECT_FALSE(room_error("#", 32).empty());
  EXPECT_FALSE(room_error("a.b", 32).empty());
  EXPECT_EQ(fold("AbC-9"), "abc-9");
}

}  // namespace

namespace {
Limits catch_up_limits() {
  Limits l = test_limits();
  l.max_catch_up = 4;
  return l;
}
}  // namespace

class CatchUpTest : public HubTest {
 protected:
  CatchUpTest() : HubTest(catch_up_limits()) {}
};

TEST_F(CatchUpTest, APageThatMissedTooMuchGetsTheLastMessagesAndIsTold) {
  TestClient& a = connect("alice");
  for (int i = 1; i <= 12; ++i) say(a, "m" + std::to_string(i));
  settle(loop);
  TestClient& b = connect("", Hello{.nick = "bob", .after_id = store.messages()[0].id});
  EXPECT_TRUE(b.saw("* you missed more than 4 messages; here are the last ones\n"));
  EXPECT_TRUE(b.saw("* the last 3 messages of #lobby:\n"));
  EXPECT_TRUE(b.saw("<alice> m10\n"));
  EXPECT_FALSE(b.saw("<alice> m9\n"));
}

// Two hubs (two instances of the server) sharing one store, joined by a bus that the test drives: it holds what
// each hub published and hands it to the other hub late, out of order, twice, or never.
namespace {

struct TestBus final : Bus {
  std::vector<Message> published;
  void publish(const Message& m) override { published.push_back(m); }
};

}  // namespace

class ScaleOutTest : public ::testing::Test {
 protected:
  ScaleOutTest()
      : loop(tulipa::LoopOptions{.clock = &clock}),
        store(loop),
        one(loop, store, test_limits(), nullptr),
        two(loop, store, test_limits(), nullptr) {
    one.set_bus(&bus_one);
    two.set_bus(&bus_two);
  }
  ~ScaleOutTest() override {
    for (auto& [hub, c] : members) {
      if (c.session) hub->disconnect(*c.session);
    }
    settle(loop);
  }
  TestClient& connect(Hub& hub, const std::string& nick) {
    auto& [h, c] = members.emplace_back(&hub, TestClient{});
    c.session = &hub.connect(c, "10.0.0.1");
    hub.receive(*c.session, "/nick " + nick);
    settle(loop);
    c.received.clear();
    return c;
  }
  // The room's messages as a member saw them, in order.
  static std::vector<std::string> said(const TestClient& c) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while ((at = c.received.find("> ", at)) != std::string::npos) {
      std::size_t end = c.received.find('\n', at);
      out.push_back(c.received.substr(at + 2, end - at - 2));
      at = end;
    }
    return out;
  }

  tulipa::VirtualClock clock;
  tulipa::EventLoop loop;
  MemoryStore store;
  TestBus bus_one, bus_two;
  Hub one, two;
  std::deque<std::pair<Hub*, TestClient>> members;
};

TEST_F(ScaleOutTest, BothInstancesSeeTheRoomInOneOrderWhateverTheBusDoes) {
  TestClient& a = connect(one, "alice");
  TestClient& b = connect(two, "bob");
  one.receive(*a.session, "a1");
  two.receive(*b.session, "b1");
  one.receive(*a.session, "a2");
  two.receive(*b.session, "b2");
  settle(loop);
  // Stored in the order a1 b1 a2 b2 (seq 1..4); each instance delivered its own at once, and waits for the
  // others' before delivering past them.
  ASSERT_EQ(bus_one.published.size(), 2u);
  ASSERT_EQ(bus_two.published.size(), 2u);
  EXPECT_EQ(bus_one.published[1].seq, 3u);
  // The bus hands them over late, reversed, and twice.
  for (auto it = bus_two.published.rbegin(); it != bus_two.published.rend(); ++it) one.deliver(*it);
  for (const Message& m : bus_one.published) two.deliver(m);
  for (const Message& m : bus_one.published) two.deliver(m);
  settle(loop);
  std::vector<std::string> order{"a1", "b1", "a2", "b2"};
  EXPECT_EQ(said(a), order);
  EXPECT_EQ(said(b), order);
}

TEST_F(ScaleOutTest, AMessageTheBusLostIsReadFromTheStoreWhenTheNextOneShowsTheGap) {
  TestClient& a = connect(one, "alice");
  TestClient& b = connect(two, "bob");
  one.receive(*a.session, "lost");
  settle(loop);
  one.receive(*a.session, "next");
  settle(loop);
  ASSERT_EQ(bus_one.published.size(), 2u);
  two.deliver(bus_one.published[1]);  // "lost" never arrives
  settle(loop);
  EXPECT_EQ(said(b), (std::vector<std::string>{"lost", "next"}));
  EXPECT_EQ(said(a), (std::vector<std::string>{"lost", "next"}));
}

TEST_F(ScaleOutTest, AfterTheBusWasAwayResyncReadsWhatWasMissed) {
  TestClient& a = connect(one, "alice");
  TestClient& b = connect(two, "bob");
  TestClient& c = connect(two, "carol");
  two.receive(*c.session, "/join dev");
  TestClient& d = connect(one, "dave");
  one.receive(*d.session, "/join dev");
  settle(loop);
  one.receive(*a.session, "while away");
  one.receive(*d.session, "in dev");
  settle(loop);
  two.resync();  // the bus reconnected: nothing it lost is lost
  settle(loop);
  EXPECT_EQ(said(b), (std::vector<std::string>{"while away"}));
  EXPECT_TRUE(c.saw("#dev <dave> in dev\n"));
  // And what arrives afterwards from the bus is not delivered twice.
  for (const Message& m : bus_one.published) two.deliver(m);
  settle(loop);
  EXPECT_EQ(said(b), (std::vector<std::string>{"while away"}));
}

// Two hubs sharing a directory (what Redis is to the binary, bus/redis_bus.hpp): nicks claimed in one map, private
// messages handed to the hub holding the nick; every answer comes at a later pass, as over a network.
namespace {

struct SharedDirectory {
  std::map<std::string, std::size_t> owner;  // folded nick -> hub
  std::vector<Hub*> hubs;
  bool away = false;  // unreachable: every request fails
};

struct TestDirectory final : Directory {
  TestDirectory(tulipa::EventLoop& loop, SharedDirectory& shared, std::size_t index)
      : loop(loop), shared(shared), index(index), prefix("guest-" + std::to_string(index) + "-") {}
  std::string_view guest_prefix() const override { return prefix; }
  void claim(std::string key, Done done) override {
    loop.call_soon([this, key, done] {
      if (shared.away) return done(false, "away");
      auto [it, added] = shared.owner.try_emplace(key, index);
      done(added || it->second == index, "");
    });
  }
  void release(std::string key) override {
    auto it = shared.owner.find(key);
    if (it != shared.owner.end() && it->second == index) shared.owner.erase(it);
  }
  void route(const Message& m, Done done) override {
    loop.call_soon([this, m, done] {
      if (shared.away) return done(false, "away");
      std::string key = fold(m.to);
      std::size_t target = shared.hubs.size();
      if (auto it = shared.owner.find(key); it != shared.owner.end()) {
        target = it->second;
      } else if (key.starts_with("guest-")) {
        target = std::stoul(key.substr(6));
      }
      if (target >= shared.hubs.size()) return done(false, "");
      shared.hubs[target]->deliver(m);
      done(true, "");
    });
  }

  tulipa::EventLoop& loop;
  SharedDirectory& shared;
  std::size_t index;
  std::string prefix;
};

}  // namespace

class DirectoryTest : public ScaleOutTest {
 protected:
  DirectoryTest() : dir_one(loop, shared, 0), dir_two(loop, shared, 1) {
    shared.hubs = {&one, &two};
    one.set_directory(&dir_one);
    two.set_directory(&dir_two);
  }
  // The members go while the directory is still there (they give their nicks back).
  ~DirectoryTest() override {
    for (auto& [hub, c] : members) {
      if (c.session) hub->disconnect(*std::exchange(c.session, nullptr));
    }
    settle(loop);
    one.set_directory(nullptr);
    two.set_directory(nullptr);
  }
  TestClient& guest(Hub& hub, const Hello& hello = {}) {
    auto& [h, c] = members.emplace_back(&hub, TestClient{});
    c.session = &hub.connect(c, "10.0.0.2", hello);
    settle(loop);
    return c;
  }

  SharedDirectory shared;
  TestDirectory dir_one, dir_two;
};

TEST_F(DirectoryTest, NicksAreUniqueAcrossHubsWhateverTheirCaseAndFreeOnceTheirHolderLeft) {
  TestClient& a = connect(one, "alice");
  EXPECT_EQ(a.session->nick(), "alice");
  TestClient& b = guest(two);
  two.receive(*b.session, "/nick ALICE");
  settle(loop);
  EXPECT_TRUE(b.saw("the nick ALICE is taken"));
  EXPECT_TRUE(b.session->nick().starts_with("guest-1-"));
  // A page asking for a nick held on the other hub stays a guest, and is told.
  TestClient& page = guest(two, {.nick = "Alice"});
  EXPECT_TRUE(page.saw("the nick Alice is taken"));
  EXPECT_TRUE(page.session->nick().starts_with("guest-1-"));
  // Asked for twice at once on one hub: the second is refused while the first is being claimed.
  TestClient& c = guest(one);
  one.receive(*a.session, "/nick carol");
  one.receive(*c.session, "/nick Carol");
  settle(loop);
  EXPECT_EQ(a.session->nick(), "carol");
  EXPECT_TRUE(c.saw("the nick Carol is taken"));
  // "alice" was given back when its holder became carol.
  two.receive(*b.session, "/nick alice");
  settle(loop);
  EXPECT_EQ(b.session->nick(), "alice");
  // A client that leaves frees its nick for the other hub.
  one.disconnect(*a.session);
  a.session = nullptr;
  settle(loop);
  two.receive(*page.session, "/nick carol");
  settle(loop);
  EXPECT_EQ(page.session->nick(), "carol");
  EXPECT_EQ(shared.owner.at("carol"), 1u);
}

TEST_F(DirectoryTest, PrivateMessagesReachTheOtherHubAndItsGuestsStoredFirst) {
  TestClient& a = connect(one, "alice");
  TestClient& b = connect(two, "bob");
  TestClient& g = guest(two);
  one.receive(*a.session, "/msg BOB hello bob");
  settle(loop);
  EXPECT_TRUE(b.saw("[alice -> you] hello bob"));
  EXPECT_TRUE(a.saw("[you -> BOB] hello bob"));
  one.receive(*a.session, "/msg " + g.session->nick() + " hello guest");
  settle(loop);
  EXPECT_TRUE(g.saw("[alice -> you] hello guest"));
  ASSERT_EQ(store.messages().size(), 2u);
  EXPECT_EQ(store.messages()[0].to, "BOB");
  one.receive(*a.session, "/msg nobody1 anyone?");
  settle(loop);
  EXPECT_TRUE(a.saw("nobody is called nobody1"));
  EXPECT_FALSE(b.saw("anyone?"));
  // The directory away: the sender is told why (the message is stored).
  shared.away = true;
  one.receive(*a.session, "/msg bob later");
  two.receive(*b.session, "/nick robert");
  settle(loop);
  EXPECT_TRUE(a.saw("your message to bob is stored but could not be handed on (away)"));
  EXPECT_TRUE(b.saw("the nick robert cannot be checked now (away)"));
  EXPECT_EQ(b.session->nick(), "bob");
}

TEST_F(DirectoryTest, ANickTakenElsewhereWhileTheDirectoryForgotItMakesItsHolderAGuest) {
  TestClient& a = connect(one, "alice");
  TestClient& g = guest(one);
  EXPECT_EQ(one.claimed_nicks(), std::vector<std::string>{"alice"});  // guests need no claim
  shared.owner.clear();                                               // Redis restarted empty
  TestClient& b = connect(two, "Alice");
  EXPECT_EQ(b.session->nick(), "Alice");
  one.nick_lost("alice");  // what the bus does when claiming "alice" again fails
  settle(loop);
  EXPECT_TRUE(a.saw("another instance gave the nick alice to someone else"));
  EXPECT_TRUE(a.session->nick().starts_with("guest-0-"));
  EXPECT_TRUE(one.claimed_nicks().empty());
  (void)g;
}
