#!/bin/bash
# Side-by-side benchmark of PostgreSQL clients, in one run: a throwaway server pinned to CPU 0 (the postmaster, and
# so every backend it forks), each client pinned to CPU 1, every client on every shape.
#   bench/compare/db/pg.sh [NAME=COMMAND ...]   prints one row of key=value figures per shape and client
# The server: Debian's PostgreSQL (15 on Debian 12), a cluster made for the run in a temp dir (initdb as the postgres
# user: PostgreSQL refuses to run as root), listening on a free loopback port and a Unix socket in that dir, trust
# authentication, user and database postgres; stopped and removed at the end, also after an error or Ctrl-C. It does
# not last, so it is tuned not to write: fsync, synchronous_commit and full_page_writes off, and autovacuum off (no
# background work during a run; the shapes only read).
# Shapes (the SQL: pg_peer.py):
#   seq     SELECT 1, prepared, one connection, one query at a time: a round trip and the server's cost per query
#   rows10  a prepared SELECT of 10 rows x 5 columns (int, bigint, text, float8, timestamptz), one connection,
#           one at a time; the table rows10 (i 1..10) is made here
#   pipe    SELECT 1 with 100 in flight on one connection
#   pool    1,000 tasks sharing a pool of 10 connections, each running SELECT 1
# A client: COMMAND with SHAPE, DSN and SECS in it replaced (they are in its environment too: SHAPE, PG_DSN, SECS,
# and libpq's PGHOST, PGPORT, PGUSER, PGDATABASE) runs the shape for SECS seconds and prints "ops=N secs=S" last.
# Without NAME=COMMAND it runs the peers: pgbench (pgbench_peer.sh: the C/libpq floor; pipeline mode for pipe and
# ten connections for pool), asyncpg and psycopg 3 async (pg_peer.py: what each does with pipe is written there).
# Figures: ops_per_s = N / S; client_cpu_us_per_op = the client's CPU (user + system, of its whole process tree, from
# /proc) per op, over its whole life (a Python client's imports and connecting: ~0.1 s of CPU, ~2% of a 5 s run);
# server_cpu_us_per_op = the CPU of the postgres process tree (postmaster, backends, background processes) over the
# same interval, per op.
# Knobs: SECS (5), SHAPES ("seq rows10 pipe pool"), PG_VIA (tcp, or unix: the DSN names the socket's dir), PORT (base
# port, 25432), PG_BIN (PostgreSQL's bin dir, default the newest /usr/lib/postgresql/*/bin). Examples:
#   bench/compare/db/pg.sh "tulipa=$PWD/build/bench/tulipa_pg SHAPE DSN SECS"      SHAPES="seq pipe" SECS=10 bench/compare/db/pg.sh
#   bench/compare/db/pg.sh "asyncpg-uvloop=env LOOP=uvloop /usr/bin/python3 bench/compare/db/pg_peer.py asyncpg SHAPE DSN SECS"
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need postgresql python3-asyncpg python3-psycopg python3-psycopg-pool || echo "# install failed; running with what there is" >&2
export PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
secs=${SECS:-5} shapes=${SHAPES:-seq rows10 pipe pool}
clients=("$@")
[ ${#clients[@]} -eq 0 ] && clients=(
  "pgbench=$here/pgbench_peer.sh SHAPE DSN SECS"
  "asyncpg=/usr/bin/python3 $here/pg_peer.py asyncpg SHAPE DSN SECS"
  "psycopg=/usr/bin/python3 $here/pg_peer.py psycopg SHAPE DSN SECS"
)
# TULIPA_CLIENT=COMMAND puts tulipa's client first among the default peers (make compare's panel does).
[ $# -eq 0 ] && [ -n "${TULIPA_CLIENT:-}" ] && clients=("tulipa=$TULIPA_CLIENT" "${clients[@]}")

work=$(mktemp -d /tmp/pg-bench.XXXXXX) server_pid=
as_pg=()  # PostgreSQL's server tools, as the postgres user when we are root
if [ "$(id -u)" = 0 ]; then chown postgres: "$work"; as_pg=(runuser -u postgres --); fi
cleanup() {
  stop_client
  [ -f "$work/data/postmaster.pid" ] && "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$work"  # where the postgres user may be (runuser keeps the directory)

port=$(free_port "${PORT:-25432}")
if ! "${as_pg[@]}" "$PG_BIN/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$work/initdb.log" 2>&1; then
  echo "# initdb failed: $(tail -n3 "$work/initdb.log")" >&2; exit 1
fi
opts="-p $port -k $work -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
if ! taskset -c 0 "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w -o "$opts -c autovacuum=off" start >/dev/null; then
  echo "# the server did not start: $(tail -n3 "$work/server.log")" >&2; exit 1
fi
server_pid=$(head -n1 "$work/data/postmaster.pid")
"$PG_BIN/psql" -h "$work" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 >/dev/null <<'EOF' || exit 1  # the table
CREATE TABLE rows10 (i int PRIMARY KEY, b bigint NOT NULL, t text NOT NULL, f float8 NOT NULL, ts timestamptz NOT NULL);
INSERT INTO rows10 SELECT g, g::bigint * 1000000007, 'row ' || g || ' of ten, a little text', g / 7.0,
  '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 hour 1 minute 1.5 second' FROM generate_series(1, 10) g;
VACUUM ANALYZE rows10;
EOF
if [ "${PG_VIA:-tcp}" = unix ]; then host=$work dsn="postgresql://postgres@/postgres?host=$work&port=$port"
else host=127.0.0.1 dsn="postgresql://postgres@127.0.0.1:$port/postgres"; fi

echo "# postgres $("$PG_BIN/postgres" --version | awk '{ print $3 }') on CPU 0, clients on CPU 1, secs=$secs dsn=$dsn"
for shape in $shapes; do
  for entry in "${clients[@]}"; do
    name=${entry%%=*} cmd=${entry#*=}
    cmd=${cmd//SHAPE/"$shape"}; cmd=${cmd//SECS/"$secs"}; cmd=${cmd//DSN/"$dsn"}  # quoted: bash 5.2 reads & in a bare one
    bench "$name" "$shape" env SHAPE="$shape" PG_DSN="$dsn" SECS="$secs" \
      PGHOST="$host" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres $cmd
  done
done
