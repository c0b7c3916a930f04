// Helpers for the transport/server tests: run a real loop until a condition holds, recording protocols, and raw
// sockets for the peer side when a test needs exact control (shutdown, reset).
//
// No test sleeps: run_until() blocks in the loop's selector until I/O arrives. A 30-second watchdog timer only
// turns a hang into a clear failure; it is not a timing assertion.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"

namespace tulipa::test {

// Runs loop passes until pred() is true. Returns false if the watchdog fired first.
inline bool run_until(EventLoop& loop, const std::function<bool()>& pred,
                      std::chrono::seconds watchdog = std::chrono::seconds(30)) {
  bool expired = false;
  TimerHandle t = loop.call_later(watchdog, [&] { expired = true; });
  while (!pred() && !expired) loop.run_once();
  t.cancel();
  return !expired;
}

inline std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
inline std::string text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// What happened to one connection, kept by the test: the protocol object itself is destroyed after
// connection_lost, the Log outlives it.
struct Log {
  Transport* transport = nullptr;  // set by connection_made, null again after connection_lost
  std::string received{};
  int made = 0;
  int eofs = 0;
  int lost = 0;
  int paused = 0;
  int resumed = 0;
  bool keep_open_on_eof = false;
  std::exception_ptr error{};
  std::vector<std::string> order{};  // the sequence of calls, to check the state machine
  std::function<void(Log&)> on_made;
  std::function<void(Log&, std::span<const std::byte>)> on_data;
  std::function<void(Log&)> on_eof;
  std::function<void(Log&)> on_lost;
  std::function<void(Log&)> on_pause;
  std::function<void(Log&)> on_resume;
};

// A protocol that records everything that happens to it into a Log.
struct Recorder : Protocol {
  explicit Recorder(Log& l) : log(l) {}
  Log& log;
  void connection_made(Transport& t) override {
    log.transport = &t;
    ++log.made;
    log.order.push_back("made");
    if (log.on_made) log.on_made(log);
  }
  void data_received(std::span<const std::byte> data) override {
    log.received.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (log.order.empty() || log.order.back() != "data") log.order.push_back("data");
    if (log.on_data) log.on_data(log, data);
  }
  bool eof_received() override {
    ++log.eofs;
    log.order.push_back("eof");
    if (log.on_eof) log.on_eof(log);
    return log.keep_open_on_eof;
  }
  void connection_lost(std::exception_ptr exc) override {
    ++log.lost;
    log.error = exc;
    log.order.push_back("lost");
    if (log.on_lost) log.on_lost(log);
    log.transport = nullptr;
  }
  void pause_writing() override {
    ++log.paused;
    log.order.push_back("pause");
    if (log.on_pause) log.on_pause(log);
  }
  void resume_writing() override {
    ++log.resumed;
    log.order.push_back("resume");
    if (log.on_resume) log.on_resume(log);
  }
};

inline ProtocolFactory recorder_factory(Log& log) {
  return [&log] { return std::make_unique<Recorder>(log); };
}

// Connects with create_connection and runs the loop until connected; returns the transport (null on error).
inline Transport* connect_to(EventLoop& loop, const SocketAddress& to, Log& log, std::exception_ptr* error = nullptr) {
  bool done = false;
  Transport* result = nullptr;
  create_connection(loop, recorder_factory(log), to.host(), to.port(), [&](Transport* t, std::exception_ptr e) {
    done = true;
    result = t;
    if (error) *error = e;
  });
  run_until(loop, [&] { return done; });
  return result;
}

// A protocol that writes back what it receives.
struct Echo : Protocol {
  Transport* transport = nullptr;
  void connection_made(Transport& t) override { transport = &t; }
  void data_received(std::span<const std::byte> data) override { transport->write(data); }
};

// The port of the server's first socket.
inline std::uint16_t port_of(const Server& s) { return s.sockets().at(0).port(); }

// A raw client socket connected (blocking connect: the listening socket's backlog completes it without the loop),
// then made non-blocking.
inline int raw_connect(const SocketAddress& to) {
  int fd = ::socket(static_cast<const sockaddr*>(to.data())->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::connect(fd, static_cast<const sockaddr*>(to.data()), to.size()), 0) << std::strerror(errno);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// Reads what is available on a non-blocking fd into `out`; returns false on EOF.
inline bool raw_drain(int fd, std::string& out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    return n != 0;
  }
}

// Reads from a raw fd, with the loop running, until `n` bytes arrived or EOF; returns what arrived.
inline std::string raw_read(EventLoop& loop, int fd, std::size_t n, bool* eof = nullptr) {
  std::string out;
  bool at_eof = false;
  loop.add_reader(fd, [&] { at_eof = !raw_drain(fd, out) || at_eof; });
  run_until(loop, [&] { return out.size() >= n || at_eof; });
  loop.remove_reader(fd);
  if (eof) *eof = at_eof;
  return out;
}

// Collects everything written to a raw fd until EOF.
inline std::string raw_read_to_eof(EventLoop& loop, int fd) {
  bool eof = false;
  std::string all = raw_read(loop, fd, SIZE_MAX, &eof);
  EXPECT_TRUE(eof) << "no EOF before the watchdog";
  return all;
}

// Loops that are closed at the end of the test with whatever callbacks are still pending run first.
inline void settle(EventLoop& loop) {
  for (int i = 0; i < 1000 && loop.ready_count() > 0; ++i) loop.run_once();
}

}  // namespace tulipa::test
