// The line framer: the same lines wherever the reads split the stream, a last line without newline at EOF,
// overlong lines refused once and skipped without being buffered.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/line_framer.hpp"

using chat::LineFramer;

namespace {

// Feeds `chunks`, then EOF; returns the lines, with "<too long>" for each overlong one.
std::vector<std::string> frame(const std::vector<std::string>& chunks, std::size_t max_line = 16) {
  LineFramer f(max_line);
  std::vector<std::string> out;
  auto drain = [&] {
    for (;;) {
      LineFramer::Next n = f.next();
      if (n.kind == LineFramer::Next::Kind::none) return;
      out.push_back(n.kind == LineFramer::Next::Kind::line ? std::string(n.text) : "<too long>");
    }
  };
  for (const std::string& c : chunks) {
    f.feed(c);
    drain();
  }
  f.finish();
  drain();
  EXPECT_TRUE(f.at_eof());
  return out;
}

TEST(ChatFramer, EverySplitOfTheStreamGivesTheSameLines) {
  const std::string stream = "hello\r\nworld\n\r\nlast\rline\r\n\nend";
  const std::vector<std::string> expected = {"hello", "world", "", "last\rline", "", "end"};
  EXPECT_EQ(frame({stream}), expected);
  for (std::size_t i = 0; i <= stream.size(); ++i) {
    for (std::size_t j = i; j <= stream.size(); ++j) {
      EXPECT_EQ(frame({stream.substr(0, i), stream.substr(i, j - i), stream.substr(j)}), expected) << i << " " << j;
    }
  }
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  EXPECT_EQ(frame(bytes), expected);
}

TEST(ChatFramer, ALastLineWithoutNewlineIsDeliveredAtEof) {
  EXPECT_EQ(frame({"one\ntwo"}), (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(frame({"one\ntwo\r"}), (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(frame({"one\n"}), (std::vector<std::string>{"one"}));
  EXPECT_EQ(frame({""}), (std::vector<std::string>{}));
}

TEST(ChatFramer, AnOverlongLineIsRefusedOnceAndTheNextLineWorks) {
  const std::string longline(40, 'x');
  EXPECT_EQ(frame({longline + "\nok\n"}), (std::vector<std::string>{"<too long>", "ok"}));
  // Split over many reads: refused as soon as it passes the limit, the rest skipped up to its newline.
  std::vector<std::string> pieces = {
      "a\n", longline.substr(0, 10), longline.substr(10, 10), longline.substr(20), "tail\r", "\nnext\n"};
  EXPECT_EQ(frame(pieces), (std::vector<std::string>{"a", "<too long>", "next"}));
  // Exactly the limit is fine, with either line end; one more byte is not.
  EXPECT_EQ(frame({std::string(16, 'y') + "\r\n"}), (std::vector<std::string>{std::string(16, 'y')}));
  EXPECT_EQ(frame({std::string(16, 'y') + "\r", "\n"}), (std::vector<std::string>{std::string(16, 'y')}));
  EXPECT_EQ(frame({std::string(17, 'y') + "\n"}), (std::vector<std::string>{"<too long>"}));
  EXPECT_EQ(frame({std::string(17, 'y')}), (std::vector<std::string>{"<too long>"}));
}

TEST(ChatFramer, AFloodOfBytesWithoutNewlineIsNotBuffered) {
  LineFramer f(16);
  for (int i = 0; i < 1000; ++i) {
    f.feed(std::string(4096, 'z'));
    while (f.next().kind != LineFramer::Next::Kind::none) {
    }
    EXPECT_LE(f.buffered(), 4096u + 17u);
  }
  f.feed("\nfine\n");
  LineFramer::Next n = f.next();
  ASSERT_EQ(n.kind, LineFramer::Next::Kind::line);
  EXPECT_EQ(n.text, "fine");
}

}  // namespace
