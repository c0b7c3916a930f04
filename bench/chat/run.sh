#!/bin/bash
# The chat benchmark of issue 11: bench/chat_load against tulipa-chat, the Node peer (node_chat.js, `ws`) and the
# Python peer (python_chat.py, asyncio + websockets), in one run, each server pinned to CPU 0. Prints one row a
# server and round (chat_load's key=value figures), then the best of the rounds for each server (the round with the
# most deliveries per server CPU-second) and the ratios to Node's on that figure. Run it under
# `flock /work/bench.lock` on a shared machine. tulipa-chat runs with its flood gate opened
# (--flood-rate/--flood-burst 1000000) so that it does the work the peers do (they have none); with its defaults the
# flood phase's flooder would be slowed after 20 lines and disconnected.
# The load tool runs its clients on THREADS loops (default 2) on the CPUs TOOL_CPUS (default 0,1, taskset's list):
# on one CPU (TOOL_CPUS=1) it reads the flood's 9.6 M deliveries far slower than the server writes them (7 M were
# still unread after 30 s), so it shares the server's core, and the server's figures are per CPU-second it used.
#   bench/chat/run.sh [BUILD_DIR]      knobs: IDLE (10000) SENDERS (100) ROOMS (10) SECS (5) ROUNDS (2) PORT (27070)
#                                      THREADS (2) TOOL_CPUS (0,1) ONLY (server names, e.g. "tulipa": the others skipped)
#                                      TULIPA_ARGS (more options, e.g. "--loops 2") TULIPA_STORE (memory:)
#                                      SERVER_CPUS (0; 0,1 for a server with --loops 2)
#                                      IDLE_ONLY (1: only the idle phase, for bytes per idle client; the best round
#                                      of a server is then the one with the fewest bytes per idle TCP + WebSocket
#                                      client) BASE (another build folder: its tulipa-chat runs too, as the row
#                                      "tulipa-base", with the same options: before and after a change in one run)
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
idle=${IDLE:-10000} senders=${SENDERS:-100} rooms=${ROOMS:-10} secs=${SECS:-5} rounds=${ROUNDS:-2} port=${PORT:-27070}
threads=${THREADS:-2} tool_cpus=${TOOL_CPUS:-0,1} only=${ONLY:-} server_cpus=${SERVER_CPUS:-0}
idle_only=${IDLE_ONLY:-0} base=${BASE:-}
ulimit -n "$(ulimit -Hn)" 2>/dev/null
load=$build/bench/chat_load
chat=$build/apps/chat/tulipa-chat
[ -z "$base" ] || base=$base/apps/chat/tulipa-chat
for f in "$load" "$chat" ${base:+"$base"}; do [ -x "$f" ] || { echo "run.sh: $f is missing (cmake --build build --target chat_load tulipa-chat)" >&2; exit 2; }; done

listening() { awk -v p="$(printf ':%04X' "$1")" '$2 ~ p "$" && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp; }

chat_options="${TULIPA_ARGS:-} --tcp 127.0.0.1:TCP --http 127.0.0.1:WS --store ${TULIPA_STORE:-memory:} --idle 0 --max-clients 100000 --max-per-ip 100000 --flood-rate 1000000 --flood-burst 1000000"
servers=(
  "tulipa=$chat $chat_options"
  "node=node $here/node_chat.js TCP WS"
  "python=/usr/bin/python3 $here/python_chat.py TCP WS"
)
[ -z "$base" ] || servers+=("tulipa-base=$base $chat_options")
results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); idle=$idle senders=$senders rooms=$rooms secs=$secs threads=$threads tool_cpus=$tool_cpus"
for round in $(seq "$rounds"); do
  for entry in "${servers[@]}"; do
    name=${entry%%=*} cmd=${entry#*=}
    [ -z "$only" ] || [[ " $only " == *" $name "* ]] || continue
    tcp=$port ws=$((port + 1)) port=$((port + 2))
    cmd=${cmd//TCP/$tcp} cmd=${cmd//WS/$ws}
    taskset -c "$server_cpus" $cmd >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do listening "$tcp" && listening "$ws" && break; sleep 0.1; done
    if ! listening "$tcp" || ! listening "$ws"; then
      echo "$name round=$round skipped=did-not-listen"; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; continue
    fi
    row=$(taskset -c "$tool_cpus" timeout 300 "$load" --tcp "127.0.0.1:$tcp" --ws "ws://127.0.0.1:$ws/ws" --pid "$pid" \
          --name "$name" --idle "$idle" --senders "$senders" --rooms "$rooms" --secs "$secs" --threads "$threads" \
          --idle-only "$idle_only" 2>/dev/null)
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    echo "$row round=$round"
    echo "$row" >>"$results"
  done
done
if [ "$idle_only" = 1 ]; then
  echo "# best of $rounds rounds (fewest bytes per idle TCP + WebSocket client), ratios to node:"
  awk '
    { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if (f["failed"] + 0 > 0) next
      v = f["bytes_per_idle_tcp"] + f["bytes_per_idle_ws"]
      if (!($1 in best) || v < best[$1]) { best[$1] = v; tcpb[$1] = f["bytes_per_idle_tcp"]; wsb[$1] = f["bytes_per_idle_ws"] } }
    END { for (n in best) printf "%-12s bytes_per_idle_tcp=%s (x%.3f node) bytes_per_idle_ws=%s (x%.3f node)\n", n, tcpb[n],
            ("node" in best) ? tcpb[n] / tcpb["node"] : 0, wsb[n], ("node" in best) ? wsb[n] / wsb["node"] : 0 }' "$results"
  exit 0
fi
echo "# best of $rounds rounds (most deliveries per server CPU-second), ratios to node:"
awk '
  { name = $1; v = 0; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    v = f["deliveries_per_server_cpu_s"] + 0
    if (!(name in best) || v > best[name]) { best[name] = v; row[name] = $0
      p99[name] = f["p99_ms"]; probe[name] = f["probe_p99_ms"]; tcpb[name] = f["bytes_per_idle_tcp"]; wsb[name] = f["bytes_per_idle_ws"]
      lost[name] = f["lost"] "/" f["flood_undelivered"]; dps[name] = f["deliveries_per_s"] } }
  END { for (n in best) printf "%-8s deliveries_per_server_cpu_s=%.0f (x%.2f node) deliveries_per_s=%s p99_ms=%s probe_p99_ms=%s bytes_per_idle_tcp=%s bytes_per_idle_ws=%s lost/flood_undelivered=%s\n",
          n, best[n], ("node" in best && best["node"] > 0) ? best[n] / best["node"] : 0, dps[n], p99[n], probe[n], tcpb[n], wsb[n], lost[n] }' "$results"
