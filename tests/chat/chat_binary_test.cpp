// The real tulipa-chat binary: bad options exit with 2, SIGTERM tells the clients and keeps every message, and
// SIGKILL under load loses no message that any client saw (it is in the history after a restart).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "chat_process.hpp"

using namespace chat::test;

namespace {

TEST(ChatBinary, BadOptionsGiveAClearErrorAndExitCode2) {
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"--tcp", "nonsense"},
                                             {"--tcp", "127.0.0.1:70000"},
                                             {"--history", "-1"},
                                             {"--history", "many"},
                                             {"--store", "mysql://x"},
                                             {"--flood-warn", "50", "--flood-kick", "10"},
                                             {"--default-room", "a b"},
                                             {"--tls", "/nonexistent/cert.pem", "/nonexistent/key.pem"},
                                             {"--loops", "2", "--store", "memory:"},
                                             {"--no-such-option"}}) {
    std::string output;
    EXPECT_EQ(run_to_exit(args, output), 2) << args[0] << ": " << output;
    EXPECT_NE(output.find("tulipa-chat: "), std::string::npos) << output;
  }
  std::string help;
  EXPECT_EQ(run_to_exit({"--help"}, help), 0);
  EXPECT_NE(help.find("--tcp"), std::string::npos);
  EXPECT_NE(help.find("--store"), std::string::npos);
}

TEST(ChatBinary, SigtermTellsTheClientsKeepsEveryMessageAndExitsZero) {
  TempDir dir;
  std::string store = "sqlite:" + (dir.path / "data" / "chat.db").string();  // the directory is made on start
  {
    Chat chat;
    ASSERT_TRUE(chat.start({"--store", store}));
    EXPECT_NE(chat.stdout_text.find("nc 127.0.0.1 " + std::to_string(chat.port)), std::string::npos);
    int fd = connect_client(chat.port);
    send_all(fd, "/nick alice\nsaid before the shutdown\n");
    std::string got;
    ASSERT_TRUE(read_until(fd, got, "<alice> said before the shutdown\n"));
    ::kill(chat.pid, SIGTERM);
    read_to_eof(fd, got);
    EXPECT_TRUE(got.ends_with("! the server is shutting down\n")) << got;
    ::close(fd);
    int status = chat.wait();
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    for (std::string_view logged : {"connect guest-1 from 127.0.0.1", "nick guest-1 -> alice", "join guest-1 #lobby",
                                    "shutdown: the server is shutting down"}) {
      EXPECT_NE(chat.stderr_text.find(logged), std::string::npos) << chat.stderr_text;
    }
  }
  EXPECT_TRUE(std::filesystem::exists(dir.path / "data" / "chat.db"));
  Chat again;
  ASSERT_TRUE(again.start({"--store", store}));
  int fd = connect_client(again.port);
  std::string got;
  EXPECT_TRUE(read_until(fd, got, "<alice> said before the shutdown\n")) << got;
  ::close(fd);
}

TEST(ChatBinary, SigkillUnderLoadLosesNoMessageAnyClientSaw) {
  TempDir dir;
  check_sigkill_under_load_loses_no_message("sqlite:" + (dir.path / "chat.db").string());
}

// --loops 2: both loops hand their messages to the one SQLite writer; what any client saw, on either loop, is stored.
TEST(ChatBinary, SigkillUnderLoadOnTwoLoopsLosesNoMessageAnyClientSaw) {
  TempDir dir;
  check_sigkill_under_load_loses_no_message("sqlite:" + (dir.path / "chat.db").string(), {"--loops", "2"});
}

}  // namespace
