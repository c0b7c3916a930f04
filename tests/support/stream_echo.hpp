// The line echo the streams tests serve: echoes each line until EOF, then closes.
#pragma once

#include "tulipa/bytes.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/streams.hpp"

namespace tulipa::test {

inline Coro<void> echo_lines(StreamReader reader, StreamWriter writer) {
  for (;;) {
    Bytes line = co_await reader.readline();
    if (line.empty()) break;
    writer.write(line);
    co_await writer.drain();
  }
  writer.close();
}

}  // namespace tulipa::test
