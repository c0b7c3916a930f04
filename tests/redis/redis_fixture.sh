#!/bin/sh
# The redis_server CTest fixture: `redis_fixture.sh start DIR` starts Debian's redis-server on a free loopback port,
# without persistence, its files in DIR, and writes the port to DIR/port (the tests read it); `stop DIR` stops it
# and removes DIR. DEBUG is enabled (DEBUG PROTOCOL sends every RESP3 type).
set -eu
cmd=$1 dir=$2
stop() {
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
case $cmd in
start)
  stop
  mkdir -p "$dir"
  for attempt in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --daemonize yes \
      --pidfile "$dir/pid" --logfile "$dir/log" --enable-debug-command yes || continue
    i=0
    while [ $i -lt 100 ]; do
      if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
        echo "$port" >"$dir/port"
        exit 0
      fi
      sleep 0.05
      i=$((i + 1))
    done
    stop
    mkdir -p "$dir"
  done
  echo "redis-server did not start" >&2
  exit 1
  ;;
stop) stop ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
