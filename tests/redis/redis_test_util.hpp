// Shared by the tulipa::redis tests: options for the fixture's server, and a key prefix per test (the test binaries
// share one server and may run in parallel).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "redis/redis_server.hpp"
#include "tulipa/redis/client.hpp"

namespace tulipa::test {

inline redis::Options fixture_options() {
  redis::Options o;
  o.host = "127.0.0.1";
  o.port = fixture_port();
  return o;
}

// "SuiteName.TestName:" plus `k`.
inline std::string key(const std::string& k) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name() + ":" + k;
}

}  // namespace tulipa::test
