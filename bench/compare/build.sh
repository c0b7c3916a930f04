#!/bin/bash
# Builds the load generator and the native peers of the comparison (bench/compare/), each only when its source (or
# this script) is newer than the binary; run.sh calls it every time. It installs nothing (make compare installs the
# Debian packages of scripts/deps/bench.txt first): a peer whose library is missing is left out with a message
# naming the package, and run.sh then shows that peer as skipped.
#   bench/compare/build.sh            builds into $BENCH_BUILD (default /tmp/tulipa-compare)
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${BENCH_BUILD:-/tmp/tulipa-compare}
mkdir -p "$out"
status=0
# build NAME SOURCE PACKAGE COMMAND...: runs COMMAND unless $out/NAME is newer than SOURCE and this script
build() {
  local name=$1 src=$2 package=$3
  shift 3
  [ "$out/$name" -nt "$here/$src" ] && [ "$out/$name" -nt "$here/build.sh" ] && return 0
  if ! "$@" 2>"$out/$name.log"; then
    echo "# build.sh: $name not built (it needs $package; see $out/$name.log)" >&2
    rm -f "$out/$name"
    [ "$name" = loadgen ] && status=1
  fi
}
build loadgen loadgen.c "libssl-dev" cc -O2 -o "$out/loadgen" "$here/loadgen.c" -lssl -lcrypto
build epoll_floor peers/epoll_floor.c "a C compiler" cc -O2 -o "$out/epoll_floor" "$here/peers/epoll_floor.c"
build http_floor peers/http_floor.c "a C compiler" cc -O2 -o "$out/http_floor" "$here/peers/http_floor.c"
build ws_floor peers/ws_floor.c "libssl-dev" cc -O2 -o "$out/ws_floor" "$here/peers/ws_floor.c" -lcrypto
build uring_floor peers/uring_floor.c "liburing-dev" cc -O2 -o "$out/uring_floor" "$here/peers/uring_floor.c" -luring
build libuv_echo peers/libuv_echo.c "libuv1-dev" cc -O2 -o "$out/libuv_echo" "$here/peers/libuv_echo.c" -luv
build lws_echo peers/lws_echo.c "libwebsockets-dev" cc -O2 -o "$out/lws_echo" "$here/peers/lws_echo.c" -lwebsockets
build asio_echo peers/asio_echo.cpp "libasio-dev" c++ -O2 -std=c++20 -o "$out/asio_echo" "$here/peers/asio_echo.cpp"
build asio_echo_small peers/asio_echo_small.cpp "libasio-dev" \
  c++ -O2 -std=c++20 -o "$out/asio_echo_small" "$here/peers/asio_echo_small.cpp"
build asio_tls_echo peers/asio_tls_echo.cpp "libasio-dev, libssl-dev" \
  c++ -O2 -std=c++20 -o "$out/asio_tls_echo" "$here/peers/asio_tls_echo.cpp" -lssl -lcrypto
[ -f "$out/cert.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$out/key.pem" -out "$out/cert.pem" \
  -days 3650 -subj /CN=localhost >/dev/null 2>&1
exit $status
