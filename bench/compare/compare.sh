#!/bin/bash
# make compare: reruns the side-by-side comparison behind the README's chart on this machine, then draws it.
#   bench/compare/compare.sh      (make compare builds build/, with tulipa_echo, tulipa_http and tulipa_ws, and
#                                 installs the Debian packages of scripts/deps/compare.txt first)
# Runs run.sh's modes of the chart (PANELS below) with tulipa and every peer available here, ROUNDS times each
# (default 2; a server's best round counts: a shared machine's noise only ever slows a run down), and writes
#   docs/compare.dat   one block a panel: server, figure, the value plotted (a ratio to the reference row, or KiB)
#   docs/compare.svg   the chart (gnuplot), one panel a mode, under a caption that says when the run was made, on
#                      what machine, and the load average at its start and end (the machine may be shared)
#   $BENCH_BUILD/compare-<mode>.txt   run.sh's raw rows; compare-meta.txt the caption's date, machine and load
# Peers that are not installed are listed as skipped in docs/compare.dat and left out of the chart; the run goes on.
# REDRAW=1 draws the chart again from the last run's rows (after changing PANELS) without running the servers; a
# panel with no rows yet is run, and the caption says when.
# The figures are ratios between rows of one run: compare them, not their absolute values, across machines. The
# throughput panels plot requests per second of the server's own CPU time (run.sh's reqs_per_server_cpu_s), not
# requests per second: on a machine shared with other work (or when the load generator is the bottleneck) req/s
# measures the neighbours; both are in the raw rows.
#
# Adding a protocol (Redis, PostgreSQL, ...): give run.sh a mode with tulipa's server among its default servers (as
# echo has "tulipa=..."), then add a line to PANELS: MODE|FIGURE|REFERENCE|TITLE, where FIGURE is a key of run.sh's
# rows (req_per_s, reqs_per_server_cpu_s, bytes_per_idle_conn) and REFERENCE the row the others are divided by
# (empty: the figure itself, in KiB when it is bytes). The chart grows a panel.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export BENCH_BUILD=${BENCH_BUILD:-/tmp/tulipa-compare}
rounds=${ROUNDS:-2}
PANELS=(
  "echo|reqs_per_server_cpu_s|tulipa|TCP echo, ${CONNS:-100} connections x ${MSG:-1024} B: requests per server CPU-second, relative to tulipa (higher is better)"
  "idle|bytes_per_idle_conn||${IDLE_N:-10000} idle connections: server memory per connection, KiB (lower is better)"
  "echo-tls|reqs_per_server_cpu_s|tulipa-tls|TLS echo, ${CONNS:-100} connections x ${MSG:-1024} B: requests per server CPU-second, relative to tulipa's (higher is better)"
  "http|reqs_per_server_cpu_s|tulipa|HTTP/1.1 hello world, wrk with ${CONNS:-100} keep-alive connections: requests per server CPU-second, relative to tulipa (higher is better)"
  "ws|reqs_per_server_cpu_s|tulipa|WebSocket echo, ${CONNS:-100} connections x ${MSG:-1024} B: messages per server CPU-second, relative to tulipa (higher is better)"
  "redis|client_cpu_us_per_op|tulipa|Redis client, GET of 100 B one at a time (db/redis.sh seq): client CPU per command, relative to tulipa (lower is better)"
  "pg|client_cpu_us_per_op|tulipa|PostgreSQL client, prepared SELECT 1 one at a time (db/pg.sh seq): client CPU per query, relative to tulipa (lower is better)"
)
# The client panels (redis, pg) run db/<mode>.sh on one shape, with tulipa's client first among the script's peers;
# their figure is a cost, so the best round is the lowest.
dat=$root/docs/compare.dat svg=$root/docs/compare.svg
mkdir -p "$BENCH_BUILD"
command -v gnuplot >/dev/null || { echo "compare.sh: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
for b in "${TULIPA_ECHO:-$root/build/bench/tulipa_echo}" "${TULIPA_HTTP:-$root/build/bench/tulipa_http}" \
  "${TULIPA_WS:-$root/build/bench/tulipa_ws}" "${TULIPA_REDIS:-$root/build/bench/tulipa_redis}" \
  "${TULIPA_PG:-$root/build/bench/tulipa_pg}"; do
  [ -x "$b" ] || { echo "compare.sh: build $b first (make build)" >&2; exit 1; }
done

# When and under what load the servers ran (kept beside the raw rows, so that REDRAW=1 draws the same caption): the
# throughput panels are ratios between rows of one run, which a busy machine changes far less than the absolutes.
meta=$BENCH_BUILD/compare-meta.txt
loadavg() { cut -d' ' -f1 /proc/loadavg; }
if [ "${REDRAW:-0}" != 1 ] || [ ! -s "$meta" ]; then
  started="$(date -u '+%Y-%m-%d %H:%M') UTC" load_start=$(loadavg)
fi

late=""
blocks=$(mktemp)
plot=()
index=0
for panel in "${PANELS[@]}"; do
  IFS='|' read -r mode figure reference title <<<"$panel"
  raw=$BENCH_BUILD/compare-$mode.txt
  n=$rounds
  [[ $mode == *idle ]] && n=1
  if [ "${REDRAW:-0}" = 1 ] && [ -s "$raw" ]; then
    n=0  # REDRAW=1: the chart again from the last run's rows, without running anything
  else
    : >"$raw"
    # REDRAW=1 runs only the panels that have no rows yet: the caption says when, and under what load
    [ "${REDRAW:-0}" = 1 ] && late+="${late:+, }$mode at $(date -u '+%H:%M') UTC (load $(loadavg))"
  fi
  for round in $(seq "$n"); do
    echo "== $mode, round $round of $n" >&2
    case $mode in
      redis) SHAPES=seq TULIPA_CLIENT="${TULIPA_REDIS:-$root/build/bench/tulipa_redis} SHAPE HOST PORT SECS" \
        "$here/db/redis.sh" ;;
      pg) SHAPES=seq TULIPA_CLIENT="${TULIPA_PG:-$root/build/bench/tulipa_pg} SHAPE DSN SECS" "$here/db/pg.sh" ;;
      *) "$here/run.sh" "$mode" ;;
    esac | tee -a "$raw" >&2
  done
  # The best round of each server (highest figure, or lowest for bytes), in the order of the first round.
  block=$(awk -v fig="$figure" -v ref="$reference" '
    /^#/ { next }
    { name = $1; v = ""; why = ""
      for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == fig) v = kv[2]; if (kv[1] == "skipped" || kv[1] == "error") why = $i }
      if (!(name in seen)) { seen[name] = 1; order[++n] = name }
      if (v == "" || v == "na") { if (!(name in best)) note[name] = (why != "" ? why : "no_figure"); next }
      low = fig ~ /bytes|_us_per_/
      if (!(name in best) || (low ? v + 0 < best[name] : v + 0 > best[name])) best[name] = v + 0
      delete note[name] }
    END {
      if (ref != "" && !(ref in best)) { print "# no figure for the reference row " ref; exit }
      for (i = 1; i <= n; i++) { s = order[i]
        if (s in best) printf "%-20s %12.0f %10.3f\n", s, best[s], ref != "" ? best[s] / best[ref] : best[s] / 1024
        else printf "# skipped %s: %s\n", s, note[s] } }' "$raw")
  # gnuplot's blocks (index N) are separated by two blank lines
  { [ $index -gt 0 ] && printf '\n\n'; echo "# $mode $figure ${reference:-KiB}: $title"; echo "$block"; } >>"$blocks"
  color='#55a868'
  [ -z "$reference" ] && color='#4c72b0'
  plot+=("set title \"$title\"; plot '$dat' index $index using 0:3:xtic(1) with boxes lc rgb '$color', '' index $index using 0:3:(sprintf('%.2f', \$3)) with labels offset 0,0.7")
  index=$((index + 1))
done

if [ -n "${started:-}" ]; then
  { echo "$started, $(uname -sr), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) CPUs"
    echo "load average $load_start at the start, $(loadavg) at the end"; } >"$meta"
fi
[ -n "${late:-}" ] && [ -s "$meta" ] && echo "panels run later: $late" >>"$meta"
caption="tulipa beside other servers, $(sed -n 1p "$meta")"
caption+="\\n$(sed -n 2p "$meta"): the throughput panels are ratios between the rows of this run"
[ -n "$(sed -n 3,9p "$meta")" ] && caption+="\\n$(sed -n 3,9p "$meta" | paste -sd';' -)"
{
  echo "# bench/compare/compare.sh: $(sed -n 1p "$meta"); $(sed -n 2p "$meta")."
  [ -n "$(sed -n 3,9p "$meta")" ] && echo "# $(sed -n 3,9p "$meta" | paste -sd';' -)."
  echo "# Best of $rounds rounds (idle: 1). One block a panel (MODE FIGURE REFERENCE): server, figure, value plotted."
  echo "# Ratios are within one run."
  cat "$blocks"
} >"$dat"
rm -f "$blocks"

gnuplot <<GP
set terminal svg size 960,$((330 * ${#PANELS[@]} + 60)) dynamic font "sans,12" background "white"
set output "$svg"
set multiplot layout ${#PANELS[@]},1 title "$caption" font "sans,13" noenhanced
set style fill solid 0.85 border -1
set boxwidth 0.7
set xtics rotate by -30 noenhanced nomirror
set ytics nomirror
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set grid ytics lc rgb "#dddddd"
set border 3
set key off
set bmargin 5
$(printf '%s\n' "${plot[@]}")
unset multiplot
GP
echo "compare.sh: wrote $dat and $svg" >&2
