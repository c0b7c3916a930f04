#!/bin/bash
# Side-by-side benchmark of Redis clients, in one run: a throwaway redis-server pinned to CPU 0, each client pinned to
# CPU 1, every client on every shape.
#   bench/compare/db/redis.sh [NAME=COMMAND ...]   prints one row of key=value figures per shape and client
# The server: Debian's redis-server (7.0 on Debian 12) on a free loopback port, without persistence (--save ''
# --appendonly no), its files in a temp dir; stopped and the dir removed at the end, also after an error or Ctrl-C.
# The key bench:v100 holds a 100-byte value. Shapes:
#   seq      GET bench:v100, one connection, one at a time: a round trip and the server's cost per command
#   pipe     GET bench:v100 with 16 in flight on one connection (redis-benchmark -P 16: batches of 16)
#   conns50  GET bench:v100 on 50 connections, each one at a time
# A client: COMMAND with SHAPE, HOST, PORT and SECS in it replaced (they are in its environment too: SHAPE,
# REDIS_HOST, REDIS_PORT, SECS) runs the shape for SECS seconds and prints "ops=N secs=S" last.
# Without NAME=COMMAND it runs the peers: redis-benchmark (redis_benchmark_peer.sh: the C floor), and redis-py's
# asyncio client with its own reply parser and with hiredis' (redis_peer.py: what it does with pipe is written there).
# Figures (lib.sh): ops_per_s = N / S; client_cpu_us_per_op = the client's CPU (its whole process tree, from /proc)
# per op, over its whole life; server_cpu_us_per_op = redis-server's CPU (all its threads) over the same interval, per
# op; steal_pct = the machine's time the hypervisor took over that interval (above a few %, the figures are noise).
# Knobs: SECS (5), SHAPES ("seq pipe conns50"), PORT (base port, 26379). Examples:
#   bench/compare/db/redis.sh "tulipa=$PWD/build/bench/tulipa_redis SHAPE HOST PORT SECS"      SHAPES=pipe bench/compare/db/redis.sh
#   bench/compare/db/redis.sh "redis-py-uvloop=env LOOP=uvloop /usr/bin/python3 bench/compare/db/redis_peer.py SHAPE HOST PORT SECS"
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need redis-server redis-tools python3-redis python3-hiredis || echo "# install failed; running with what there is" >&2
secs=${SECS:-5} shapes=${SHAPES:-seq pipe conns50}
clients=("$@")
[ ${#clients[@]} -eq 0 ] && clients=(
  "redis-benchmark=$here/redis_benchmark_peer.sh SHAPE HOST PORT SECS"
  "redis-py=/usr/bin/python3 $here/redis_peer.py SHAPE HOST PORT SECS python"
  "redis-py-hiredis=/usr/bin/python3 $here/redis_peer.py SHAPE HOST PORT SECS hiredis"
)
# TULIPA_CLIENT=COMMAND puts tulipa's client first among the default peers (make compare's panel does).
[ $# -eq 0 ] && [ -n "${TULIPA_CLIENT:-}" ] && clients=("tulipa=$TULIPA_CLIENT" "${clients[@]}")

work=$(mktemp -d /tmp/redis-bench.XXXXXX) server_pid=
cleanup() {
  stop_client
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

host=127.0.0.1 port=$(free_port "${PORT:-26379}")
taskset -c 0 redis-server --port "$port" --bind $host --save '' --appendonly no --dir "$work" \
  --logfile "$work/server.log" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 50); do [ "$(redis-cli -h $host -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
if [ "$(redis-cli -h $host -p "$port" SET bench:v100 "$(printf '%0100d' 0)" 2>&1)" != OK ]; then
  echo "# the server did not start: $(tail -n3 "$work/server.log")" >&2; exit 1
fi

echo "# redis $(redis-server --version | awk '{ print $3 }') on CPU 0 ($host:$port), clients on CPU 1, secs=$secs"
for shape in $shapes; do
  for entry in "${clients[@]}"; do
    name=${entry%%=*} cmd=${entry#*=}
    cmd=${cmd//SHAPE/"$shape"}; cmd=${cmd//SECS/"$secs"}; cmd=${cmd//HOST/"$host"}; cmd=${cmd//PORT/"$port"}
    bench "$name" "$shape" env SHAPE="$shape" REDIS_HOST=$host REDIS_PORT="$port" SECS="$secs" $cmd
  done
done
