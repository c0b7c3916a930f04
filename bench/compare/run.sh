#!/bin/bash
# Side-by-side benchmark of tulipa and other servers, in one run: each server pinned to CPU 0, the load generator to
# CPU 1. From ../shared/bench (the kit written for this project), brought into the tree so that anyone can rerun it;
# bench/compare/compare.sh (make compare) runs the modes of the README's chart and draws it.
#   bench/compare/run.sh [MODE] [NAME=COMMAND ...]   prints one row of key=value figures per server
# COMMAND gets the port appended, or PORT replaced; it prints "ready" when listening (one that prints nothing, like
# nginx, counts as ready once its port listens). Without NAME=COMMAND it runs tulipa's server for the mode
# (build/bench/tulipa_echo, tulipa_http or tulipa_ws; or $TULIPA_ECHO, $TULIPA_HTTP, $TULIPA_WS) and the mode's
# peer set; a peer that is not installed here (no binary, no Node, a Python module missing) gets a row
# "skipped=<why>" instead of figures. MODE is one of:
#   echo       TCP echo (loadgen): CONNS connections, each sends MSG bytes and waits for them back; every byte checked
#   echo-tls   the echo over TLS; CERT and KEY in a COMMAND become the paths of a self-signed pair that build.sh made
#   idle       memory per idle connection: IDLE_N connections held open (loadgen sends one byte on each after the
#              hold; alive= counts the echoes)
#   ws-idle    the same for WebSocket connections: each upgraded and one 16-byte binary message echoed before the
#              hold (ready= counts those), one more message each after it (alive= counts the echoes). Peers: those of ws
#   http-idle  the same for HTTP/1.1 keep-alive connections: one GET / each and its whole response before the hold,
#              one more after it (alive= counts the answers). Peers: those of http
#   http       HTTP/1.1 keep-alive hello world under wrk -t1 -cCONNS. The contract a server follows: GET / → 200
#              "Hello, World!", Content-Type text/plain, keep-alive; POST /echo → 200 with the request body. It is
#              checked once with curl before the load (contract=ok, or FAIL:what); wrk itself checks no bodies.
#              tulipa: build/bench/tulipa_http (tulipa::http's router and response path).
#              Peers: http-floor (peers/http_floor.c: epoll, a fixed answer per "\r\n\r\n", the physical limit; it
#              answers GET only, so its contract check is skipped), nginx (1 worker), h2o (1 thread), Node http,
#              aiohttp; see peers/*_http.*
#   http-pipe  the same with PIPE (default 16) requests pipelined per connection (wrk_pipeline.lua); no latencies
#   ws         WebSocket echo at / (loadgen): the RFC 6455 handshake per connection, then binary messages of MSG bytes,
#              ping-pong, every byte checked; req_per_s is messages per second. tulipa: build/bench/tulipa_ws, in
#              callback form (tulipa) and coroutine form (tulipa-coro: receive/send per message). Peers: ws-floor
#              (peers/ws_floor.c: epoll, the upgrade answered, then each whole frame unmasked into its echo; no
#              checks, no allocation: the physical limit), Node ws, Python websockets (asyncio, uvloop), libwebsockets
# Figures: server_cpu_us_per_req = the server's CPU over the run (user + system, of its whole process tree, from
# /proc) per request; reqs_per_server_cpu_s = 1e6 / that, the figure that stays fair when the load generator, not the
# server, is the bottleneck (likely for nginx and h2o under wrk on one core). The idle modes: bytes_per_idle_conn =
# how much the server's VmRSS (summed over its process tree) grew, 2 s into a 4 s hold, per connection held.
# SERVER_CPUS (0) and LOAD_CPUS (1) are the taskset CPU lists of the server and the load generator: a server with
# --loops 2 needs SERVER_CPUS=0,1 (then give the 1-loop row the same lists, and compare CPU per request too).
# Knobs: CONNS (100) MSG (1024) SECS (5), IDLE_N (10000), PIPE (16), PORT (base port), BENCH_BUILD (where build.sh
# puts the binaries, default /tmp/tulipa-compare), TULIPA_ECHO, TULIPA_HTTP, TULIPA_WS (tulipa's servers). Examples:
#   bench/compare/run.sh http "tulipa=$PWD/build/bench/tulipa_http PORT"      SECS=10 bench/compare/run.sh http-pipe
#   IDLE_N=5000 bench/compare/run.sh idle
set -u
# a descriptor per connection, in the servers and in loadgen: 65536, or as many as the hard limit allows
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
here=$(cd "$(dirname "$0")" && pwd)
export BENCH_BUILD=${BENCH_BUILD:-/tmp/tulipa-compare}
bin=$BENCH_BUILD
"$here/build.sh" >/dev/null || { echo "# build.sh could not build the load generator (libssl-dev?)" >&2; exit 1; }
tulipa=${TULIPA_ECHO:-$here/../../build/bench/tulipa_echo}
tulipa_http=${TULIPA_HTTP:-$here/../../build/bench/tulipa_http}
tulipa_ws=${TULIPA_WS:-$here/../../build/bench/tulipa_ws}
mode=${1:-echo}; shift || true
server_cpus=${SERVER_CPUS:-0} load_cpus=${LOAD_CPUS:-1}
conns=${CONNS:-100} msg=${MSG:-1024} secs=${SECS:-5} idle_n=${IDLE_N:-10000}
servers=("$@")
if [ ${#servers[@]} -eq 0 ]; then
  case $mode in
  echo-tls) servers=(
    "tulipa-tls=$tulipa PORT protocol --tls CERT KEY"
    "tulipa-streams-tls=$tulipa PORT streams --tls CERT KEY"
    "asio-tls=$bin/asio_tls_echo PORT CERT KEY"
    "uvloop-tls=/usr/bin/python3 $here/peers/asyncio_echo.py PORT uvloop protocol CERT KEY"
    "asyncio-tls=/usr/bin/python3 $here/peers/asyncio_echo.py PORT asyncio protocol CERT KEY"
  ) ;;
  http | http-pipe | http-idle) servers=(
    "tulipa=$tulipa_http PORT"
    "http-floor=$bin/http_floor"
    "nginx=$here/peers/nginx_http.sh PORT"
    "h2o=$here/peers/h2o_http.sh PORT"
    "node=node $here/peers/node_http.js PORT"
    "aiohttp=/usr/bin/python3 $here/peers/aiohttp_http.py PORT"
  ) ;;
  ws | ws-idle) servers=(
    "tulipa=$tulipa_ws PORT"
    "tulipa-coro=$tulipa_ws PORT --coro"
    "ws-floor=$bin/ws_floor"
    "node-ws=node $here/peers/node_ws.js PORT"
    "websockets=/usr/bin/python3 $here/peers/websockets_echo.py PORT asyncio"
    "websockets-uvloop=/usr/bin/python3 $here/peers/websockets_echo.py PORT uvloop"
    "libwebsockets=$bin/lws_echo PORT"
  ) ;;
  *) servers=(
    "tulipa=$tulipa PORT protocol"
    "tulipa-streams=$tulipa PORT streams"
    "epoll-floor=$bin/epoll_floor"
    "asio-coro=$bin/asio_echo"
    "asio-cb=$bin/asio_echo_small"
    "libuv=$bin/libuv_echo"
    "node=node $here/peers/node_echo.js"
    "uring-floor=$bin/uring_floor"
    "uvloop=/usr/bin/python3 $here/peers/asyncio_echo.py PORT uvloop protocol"
    "asyncio=/usr/bin/python3 $here/peers/asyncio_echo.py PORT asyncio protocol"
    "asyncio-streams=/usr/bin/python3 $here/peers/asyncio_echo.py PORT asyncio streams"
    "twisted=/usr/bin/python3 $here/peers/twisted_echo.py"
    "tornado=/usr/bin/python3 $here/peers/tornado_echo.py"
  ) ;;
  esac
fi

# Is a TCP port on this machine listening?
listening() { awk -v p="$(printf ':%04X' "$1")" '$2 ~ p "$" && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6; }
# PID and all its descendants (nginx's worker, h2o's helper)
tree() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '{ pid = $1; sub(/.*\) /, ""); parent[pid] = $2 }
    END { keep[root] = 1; do { n = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; n++ } } while (n)
          for (p in keep) print p }'
}
# CPU clock ticks (user + system, and those of reaped children) of PID's whole process tree
ticks() {
  local f=() p
  for p in $(tree "$1"); do f+=("/proc/$p/stat"); done
  cat "${f[@]}" 2>/dev/null | awk '{ sub(/.*\) /, ""); t += $12 + $13 + $14 + $15 } END { print t + 0 }'
}
# Resident memory (KiB) of PID's whole process tree
rss() {
  local f=() p
  for p in $(tree "$1"); do f+=("/proc/$p/status"); done
  cat "${f[@]}" 2>/dev/null | awk '/^VmRSS:/ { k += $2 } END { print k + 0 }'
}
# The HTTP contract, checked once before the load: prints ok, or FAIL: and the first thing that broke it
http_contract() {
  local url=http://127.0.0.1:$1 d
  d=$(mktemp -d)
  head -c 65536 /dev/urandom >"$d/body"
  # two GETs in one curl: the second must reuse the first's connection
  curl -s -m 5 -D "$d/head" -o "$d/get1" -o "$d/get2" -w '%{num_connects} ' "$url/" "$url/" >"$d/conns"
  curl -s -m 5 -H 'Expect:' --data-binary @"$d/body" -o "$d/echo" -w '%{http_code}' "$url/echo" >"$d/echo_code"
  if ! grep -q '^HTTP/1.1 200' "$d/head"; then echo FAIL:get_status
  elif [ "$(cat "$d/get1" 2>/dev/null)" != "Hello, World!" ]; then echo FAIL:get_body
  elif ! grep -qi '^content-type: *text/plain' "$d/head"; then echo FAIL:content_type
  elif [ "$(cat "$d/conns")" != "1 0 " ]; then echo FAIL:keep_alive
  elif [ "$(cat "$d/echo_code")" != 200 ] || ! cmp -s "$d/body" "$d/echo"; then echo FAIL:post_echo
  else echo ok; fi
  rm -rf "$d"
}
# wrk's report as a row: req_per_s p50_us p99_us total_reqs errors (socket: connect, read, write, timeout) non2xx.
# Pipelined, wrk's percentiles are garbage (one sample per batch, then its coordinated-omission correction): na.
wrk_row() {
  awk -v pipelined="$1" '
    function us(v) { return v ~ /us$/ ? v + 0 : v ~ /ms$/ ? v * 1e3 : v ~ /[0-9]s$/ ? v * 1e6 : v ~ /m$/ ? v * 6e7 : v + 0 }
    $1 == "50%" { p50 = us($2) } $1 == "99%" { p99 = us($2) }
    /requests in/ { total = $1 }
    /Socket errors/ { gsub(/[^0-9 ]/, ""); errors = $1 + $2 + $3 + $4 }
    /Non-2xx/ { non2xx = $NF }
    /Requests\/sec/ { rps = $2 }
    END { if (pipelined) p50 = p99 = "na"; else { p50 = sprintf("%.1f", p50); p99 = sprintf("%.1f", p99) }
          printf "req_per_s=%.0f p50_us=%s p99_us=%s total_reqs=%d errors=%d non2xx=%d", rps, p50, p99, total, errors, non2xx }'
}

# Why COMMAND cannot run here, or nothing when it can: its program is missing, or a module its script imports.
unavailable() {
  local prog=${1%% *}
  if [[ $prog == */* ]]; then [ -x "$prog" ] || { echo "not_built:$prog"; return; }
  else command -v "$prog" >/dev/null || { echo "not_installed:$prog"; return; }; fi
  local m
  for m in uvloop twisted tornado aiohttp websockets; do
    if [[ $1 == *python3* && $1 == *"$m"* ]] && ! "$prog" -c "import $m" 2>/dev/null; then
      echo "no_python_module:$m"; return
    fi
  done
  if [[ $1 == node* && $1 == *_ws.js* ]] && ! node -e 'try { require("ws") } catch { require("/usr/share/nodejs/ws") }' \
    2>/dev/null; then
    echo "no_node_module:ws"
  fi
}

port=${PORT:-25000}
for entry in "${servers[@]}"; do
  name=${entry%%=*}; cmd=${entry#*=}
  why=$(unavailable "$cmd")
  if [ -n "$why" ]; then
    printf "%-16s skipped=%s\n" "$name" "$why"
    continue
  fi
  port=$((port + 1))
  while listening $port; do port=$((port + 1)); done  # a port that another job holds
  cmd=${cmd//CERT/$bin/cert.pem}; cmd=${cmd//KEY/$bin/key.pem}
  if [[ $cmd == *PORT* ]]; then cmd=${cmd//PORT/$port}; else cmd="$cmd $port"; fi
  log=$(mktemp)
  taskset -c "$server_cpus" $cmd >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    grep -q ready "$log" && break
    listening $port && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  if ! kill -0 $pid 2>/dev/null || ! listening $port; then
    printf "%-16s error=not_ready log=%q\n" "$name" "$(tail -c 300 "$log")"
    kill $(tree $pid) 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"
    continue
  fi
  if [[ $mode == idle || $mode == *-idle ]]; then
    sleep 1               # the server settles (nginx forks its worker once it listens)
    rss0=$(rss $pid)
    fifo=$(mktemp -u); mkfifo "$fifo"
    taskset -c "$load_cpus" "$bin/loadgen" "$mode" 127.0.0.1 $port $idle_n 4 >"$fifo" &
    lg=$!
    read -r _ _ held < "$fifo"   # "# connected N" (idle) or "# ready N": N connections are held from now on
    sleep 2
    rss1=$(rss $pid)
    res=$(cat "$fifo"); wait $lg; rm -f "$fifo"
    per=$(( ${held:-0} > 0 ? (rss1 - rss0) * 1024 / held : 0 ))
    printf "%-16s rss_before_kib=%s rss_held_kib=%s bytes_per_idle_conn=%s %s\n" "$name" "$rss0" "$rss1" "$per" "$res"
  else
    if [[ $mode == http* ]]; then
      if [ "$name" = http-floor ]; then contract=floor; else contract=$(http_contract $port); fi
      script=() pipe=""
      [ "$mode" = http-pipe ] && script=(-s "$here/wrk_pipeline.lua") pipe=" pipe=${PIPE:-16}"
      cpu0=$(ticks $pid)
      res=$(taskset -c "$load_cpus" wrk -t1 -c"$conns" -d"${secs}s" --latency "${script[@]}" "http://127.0.0.1:$port/" | wrk_row "$pipe")
      cpu1=$(ticks $pid)
      res="mode=$mode conns=$conns$pipe $res contract=$contract"
    else
      cpu0=$(ticks $pid)
      res=$(taskset -c "$load_cpus" "$bin/loadgen" "$mode" 127.0.0.1 $port $conns $msg $secs)
      cpu1=$(ticks $pid)
    fi
    total=$(sed -n 's/.*total_reqs=\([0-9]*\).*/\1/p' <<<"$res")
    cpu=$(awk -v c=$((cpu1 - cpu0)) -v t="${total:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
      if (t > 0 && c > 0) printf "server_cpu_us_per_req=%.2f reqs_per_server_cpu_s=%.0f", c * 1e6 / hz / t, t * hz / c
      else printf "server_cpu_us_per_req=na reqs_per_server_cpu_s=na" }')
    printf "%-16s %s %s\n" "$name" "$cpu" "$res"
  fi
  kill $(tree $pid) 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"
done
