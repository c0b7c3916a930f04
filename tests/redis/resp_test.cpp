// The RESP2/RESP3 parser and serializer without a server: every type, frames split at every byte, malformed input
// and limits, attributes, the owned Reply, the serializer; redis:// URLs.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tulipa/redis/client.hpp"
#include "tulipa/redis/resp.hpp"

using namespace tulipa::redis;

namespace {

// Scans `bytes` as one frame; returns its length (0 if incomplete).
std::size_t scan_all(const std::string& bytes) {
  RespScanner s;
  return s.scan(bytes.data(), bytes.size());
}

Reply parse(const std::string& bytes) {
  EXPECT_EQ(scan_all(bytes), bytes.size()) << bytes;
  RespReader r(bytes.data(), bytes.size());
  Reply rep = read_reply(r);
  EXPECT_TRUE(r.at_end());
  return rep;
}

TEST(Resp, EveryType) {
  EXPECT_EQ(parse("+OK\r\n").str(), "OK");
  EXPECT_EQ(parse("+OK\r\n").type(), Type::simple_string);
  EXPECT_EQ(parse("-ERR bad thing\r\n").type(), Type::error);
  EXPECT_EQ(parse("-ERR bad thing\r\n").str(), "ERR bad thing");
  EXPECT_EQ(parse(":-42\r\n").integer(), -42);
  EXPECT_EQ(parse(":9223372036854775807\r\n").integer(), 9223372036854775807LL);
  EXPECT_EQ(parse("$5\r\nhe\r\no\r\n").str(), "he\r\no");
  EXPECT_EQ(parse("$0\r\n\r\n").str(), "");
  EXPECT_TRUE(parse("$-1\r\n").is_null());
  EXPECT_TRUE(parse("*-1\r\n").is_null());
  EXPECT_TRUE(parse("_\r\n").is_null());
  EXPECT_TRUE(parse("#t\r\n").boolean());
  EXPECT_FALSE(parse("#f\r\n").boolean());
  EXPECT_DOUBLE_EQ(parse(",3.25\r\n").number(), 3.25);
  EXPECT_DOUBLE_EQ(parse(",-1e10\r\n").number(), -1e10);
  EXPECT_TRUE(std::isinf(parse(",inf\r\n").number()));
  EXPECT_TRUE(std::isinf(parse(",-inf\r\n").number()));
  EXPECT_TRUE(std::isnan(parse(",nan\r\n").number()));
  EXPECT_EQ(parse("(3492890328409238509324850943850943825024385\r\n").str(),
            "3492890328409238509324850943850943825024385");
  EXPECT_EQ(parse("(3492890328409238509324850943850943825024385\r\n").type(), Type::big_number);
  EXPECT_EQ(parse("!21\r\nSYNTAX invalid syntax\r\n").type(), Type::error);
  EXPECT_EQ(parse("!21\r\nSYNTAX invalid syntax\r\n").str(), "SYNTAX invalid syntax");
  Reply v = parse("=15\r\ntxt:Some string\r\n");
  EXPECT_EQ(v.type(), Type::verbatim);
  EXPECT_EQ(v.str(), "Some string");
  EXPECT_EQ(v.format(), "txt");

  Reply a = parse("*3\r\n:1\r\n$1\r\nx\r\n*0\r\n");
  ASSERT_EQ(a.type(), Type::array);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].integer(), 1);
  EXPECT_EQ(a[1].str(), "x");
  EXPECT_EQ(a[2].size(), 0u);

  Reply m = parse("%2\r\n+first\r\n:1\r\n+second\r\n#f\r\n");
  ASSERT_EQ(m.type(), Type::map);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m.find("first")->integer(), 1);
  EXPECT_FALSE(m.find("second")->boolean());
  EXPECT_EQ(m.find("third"), nullptr);

  Reply s = parse("~2\r\n+a\r\n+b\r\n");
  EXPECT_EQ(s.type(), Type::set);
  EXPECT_EQ(s.size(), 2u);

  Reply p = parse(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
  EXPECT_EQ(p.type(), Type::push);
  EXPECT_EQ(p[0].str(), "message");
}

TEST(Resp, AttributesBelongToTheFollowingValue) {
  Reply r = parse("|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n,0.1923\r\n*2\r\n:2039123\r\n:9543892\r\n");
  ASSERT_EQ(r.type(), Type::array);
  ASSERT_EQ(r.size(), 2u);
  ASSERT_NE(r.attributes(), nullptr);
  EXPECT_EQ(r.attributes()->find("key-popularity")->size(), 2u);
  // Nested inside an aggregate, an attribute and its value count as one element.
  Reply n = parse("*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n:2\r\n");
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[0].integer(), 1);
  EXPECT_EQ(n[0].attributes()->find("k")->str(), "v");
  // next_value() skips attributes.
  std::string b = "|1\r\n+k\r\n*1\r\n:5\r\n:7\r\n";
  RespReader rd(b.data(), b.size());
  EXPECT_EQ(rd.next_value().marker, ':');
}

TEST(Resp, IncompleteAtEveryByteThenComplete) {
  const std::string frames[] = {
      "+OK\r\n",
      "$10\r\n0123456789\r\n",
      "*2\r\n%1\r\n+a\r\n~1\r\n,1.5\r\n>2\r\n$1\r\nx\r\n_\r\n",
      "|1\r\n+a\r\n+b\r\n=7\r\ntxt:abc\r\n",
      "*3\r\n*1\r\n*1\r\n:1\r\n#t\r\n(12\r\n",
  };
  for (const auto& f : frames) {
    // A fresh scanner per prefix, and one scanner fed growing prefixes of the same frame (incremental).
    RespScanner incremental;
    for (std::size_t n = 0; n < f.size(); ++n) {
      RespScanner fresh;
      EXPECT_EQ(fresh.scan(f.data(), n), 0u) << f << " cut at " << n;
      EXPECT_EQ(incremental.scan(f.data(), n), 0u) << f << " cut at " << n;
    }
    EXPECT_EQ(incremental.scan(f.data(), f.size()), f.size()) << f;
    // Two frames back to back: the first ends where it ends.
    std::string two = f + f;
    RespScanner s;
    EXPECT_EQ(s.scan(two.data(), two.size()), f.size());
    EXPECT_EQ(s.scan(two.data() + f.size(), f.size()), f.size());
  }
}

TEST(Resp, MalformedInputIsAProtocolError) {
  const std::string bad[] = {
      "?what\r\n",                  // unknown type
      ":12a\r\n",                   // not an integer
      ":\r\n",                      // empty integer
      ":+1\r\n",                    // sign not allowed
      "$3\r\nabcd\r\n",             // bulk not followed by CRLF
      "$-2\r\n",                    // negative length
      "%-1\r\n",                    // only arrays and strings may be null
      "#x\r\n",                     // boolean
      ",1.5x\r\n",                  // double
      "(12a\r\n",                   // big number
      "_x\r\n",                     // null with payload
      "+OK\rX",                     // CR without LF
      "=3\r\ntxt\r\n",              // verbatim without format
      "$?\r\n;4\r\nHell\r\n",       // streamed strings
      "$536870913\r\n",             // beyond 512 MiB
      "*1073741825\r\n",            // beyond 2^30 elements
      ":99999999999999999999\r\n",  // overflow
  };
  for (const auto& b : bad) EXPECT_THROW(scan_all(b), ProtocolError) << b;
  // Nesting beyond the limit.
  std::string deep;
  for (std::size_t i = 0; i < RespScanner::max_depth + 1; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  EXPECT_THROW(scan_all(deep), ProtocolError);
  // A header line that never ends.
  std::string line = "+" + std::string(RespScanner::max_line + 10, 'x');
  EXPECT_THROW(scan_all(line), ProtocolError);
  // Just below the limits is fine.
  std::string ok_deep;
  for (std::size_t i = 0; i < RespScanner::max_depth; ++i) ok_deep += "*1\r\n";
  ok_deep += ":1\r\n";
  EXPECT_EQ(scan_all(ok_deep), ok_deep.size());
}

TEST(Resp, LargeBulkAnnouncesItsSize) {
  std::string big(100000, 'z');
  std::string f = "$" + std::to_string(big.size()) + "\r\n" + big + "\r\n";
  RespScanner s;
  EXPECT_EQ(s.scan(f.data(), 10), 0u);
  EXPECT_EQ(s.wanted(), f.size());
  EXPECT_EQ(s.scan(f.data(), f.size()), f.size());
}

TEST(Resp, Serializer) {
  std::string out;
  std::string value = "v\r\n";
  std::vector<Arg> args{Arg("SET"), Arg(std::string_view("key")), Arg(value), Arg(-17), Arg(2.5), Arg(std::size_t{7})};
  append_command(out, args);
  EXPECT_EQ(out, "*6\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\nv\r\n\r\n$3\r\n-17\r\n$3\r\n2.5\r\n$1\r\n7\r\n");
  // What we write, we read.
  RespReader r(out.data(), out.size());
  Reply back = read_reply(r);
  ASSERT_EQ(back.size(), 6u);
  EXPECT_EQ(back[2].str(), "v\r\n");
}

TEST(Resp, ReplyTypeErrors) {
  Reply i = Reply::make_integer(3);
  EXPECT_THROW((void)i.str(), ReplyTypeError);
  EXPECT_THROW((void)i.elements(), ReplyTypeError);
  EXPECT_EQ(i.to_string(), "(integer) 3");
  EXPECT_THROW((void)parse("-ERR x\r\n").as_optional_string(), ServerError);
  EXPECT_EQ(ServerError("WRONGTYPE Operation against a key").code(), "WRONGTYPE");
}

TEST(RedisUrl, Forms) {
  Options o = Options::from_url("redis://127.0.0.1:7000");
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 7000);
  EXPECT_FALSE(o.tls);
  o = Options::from_url("rediss://alice:p%40ss@cache.example:6380/3?name=worker&protocol=2&command_timeout=250");
  EXPECT_TRUE(o.tls);
  EXPECT_EQ(o.username, "alice");
  EXPECT_EQ(o.password, "p@ss");
  EXPECT_EQ(o.host, "cache.example");
  EXPECT_EQ(o.port, 6380);
  EXPECT_EQ(o.db, 3);
  EXPECT_EQ(o.client_name, "worker");
  EXPECT_EQ(o.protocol, 2);
  EXPECT_EQ(o.command_timeout, std::chrono::milliseconds(250));
  o = Options::from_url("redis://:secret@[::1]:6390");
  EXPECT_EQ(o.username, "");
  EXPECT_EQ(o.password, "secret");
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 6390);
  o = Options::from_url("redis://localhost");
  EXPECT_EQ(o.port, 6379);
  for (const char* bad : {"http://x", "redis://h:0", "redis://h:70000", "redis://h/db", "redis://h?x=1", "redis://[::1",
                          "redis://h?protocol=4", "redis://%zz@h"})
    EXPECT_THROW(Options::from_url(bad), std::invalid_argument) << bad;
}

}  // namespace
