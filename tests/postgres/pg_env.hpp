// Where the fixture's PostgreSQL is (tests/postgres/pg_server.sh writes TULIPA_PG_STATE), and a private server for
// the tests that stop or restart theirs.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>

namespace pgtest {

inline std::map<std::string, std::string> read_state(const std::string& path) {
  std::map<std::string, std::string> vars;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string v = line.substr(eq + 1);
    if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
    vars[line.substr(0, eq)] = v;
  }
  return vars;
}

inline const std::map<std::string, std::string>& env() {
  static const auto vars = read_state(TULIPA_PG_STATE);
  if (vars.empty())
    throw std::runtime_error(
        "no PostgreSQL: run the tests through ctest (fixture postgres_server), or start one with "
        "tests/postgres/pg_server.sh start " TULIPA_PG_STATE);
  return vars;
}
inline std::string dsn() { return env().at("PG_DSN"); }
inline std::string tcp_dsn() { return env().at("PG_TCP_DSN"); }
inline std::string port() { return env().at("PG_PORT"); }

// A server of the test's own (started by pg_server.sh into another state file), for tests that restart it.
class PrivateServer {
 public:
  explicit PrivateServer(std::string name) : state_(std::string(TULIPA_PG_STATE) + "." + name) {
    script_ = script_path();
    if (std::system((script_ + " start " + state_).c_str()) != 0) throw std::runtime_error("private server");
    vars_ = read_state(state_);
  }
  ~PrivateServer() { (void)std::system((script_ + " stop " + state_).c_str()); }
  std::string dsn() const { return vars_.at("PG_DSN"); }
  std::string tcp_dsn() const { return vars_.at("PG_TCP_DSN"); }
  // pg_ctl restart -m fast: every backend is terminated, the server comes back on the same port.
  void restart() const { run_ctl("restart -m fast -w -o \"" + vars_.at("PG_OPTS") + "\""); }

 private:
  static std::string script_path() { return TULIPA_PG_SCRIPT; }
  void run_ctl(const std::string& args) const {
    std::string as_pg = geteuid() == 0 ? "runuser -u postgres -- " : "";
    std::string cmd = "cd / && " + as_pg + vars_.at("PG_BIN") + "/pg_ctl -D " + vars_.at("PG_DIR") + "/data -l " +
                      vars_.at("PG_DIR") + "/server.log " + args + " >/dev/null";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("pg_ctl " + args);
  }
  std::string state_, script_;
  std::map<std::string, std::string> vars_;
};

// Whether the backend `pid` runs a statement containing `text` (a cancel request reaching an idle backend is
// ignored, so cancellation tests wait for this first; loop on it through another connection).
inline const char* running_sql() {
  return "SELECT count(*)::int FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND strpos(query, $2) > 0";
}

}  // namespace pgtest
