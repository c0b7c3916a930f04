#!/bin/bash
# The CTest fixture of the postgres tests: a throwaway PostgreSQL 15 cluster.
#   pg_server.sh start STATE_FILE   initdb into a temp dir (as the postgres user when root: PostgreSQL refuses
#                                   root), start it on a Unix socket in that dir and a free loopback port, write
#                                   STATE_FILE (shell variables: PG_DIR, PG_PORT, PG_BIN, PG_DSN, PG_TCP_DSN)
#   pg_server.sh stop STATE_FILE    stop the server and remove the dir
# Trust for the postgres user; the role tulipa_pw (password "secret") must use a password over TCP (the wrong
# password test). Tuned not to write (fsync off): nothing here lasts.
set -eu
cmd=$1 state=$(realpath -m "$2")
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)

if [ "$cmd" = stop ]; then
  [ -f "$state" ] || exit 0
  . "$state"
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR" "$state"
  exit 0
fi

[ -f "$state" ] && "$0" stop "$state"
dir=$(mktemp -d /tmp/tulipa-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
cd "$dir"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
  || { echo "initdb failed: $(tail -n3 "$dir/initdb.log")" >&2; exit 1; }
# TLS for the sslmode tests: a throwaway self-signed certificate for "localhost" (the server wants its key 0600).
openssl req -new -x509 -days 2 -nodes -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout "$dir/server.key" -out "$dir/server.crt" >/dev/null 2>&1
chmod 600 "$dir/server.key"
[ "$(id -u)" = 0 ] && chown postgres: "$dir/server.key" "$dir/server.crt"
cat >"$dir/data/pg_hba.conf" <<'HBA'
local all all trust
host all tulipa_pw 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
HBA
for attempt in 1 2 3 4 5; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
  if "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$opts" start >/dev/null 2>&1; then
    ok=1; break
  fi
done
[ "${ok:-}" = 1 ] || { echo "the server did not start: $(tail -n3 "$dir/server.log")" >&2; exit 1; }
"$PG_BIN/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE tulipa_pw LOGIN PASSWORD 'secret'" >/dev/null
cat >"$state" <<STATE
PG_DIR=$dir
PG_PORT=$port
PG_BIN=$PG_BIN
PG_OPTS="$opts"
PG_DSN="host=$dir port=$port user=postgres dbname=postgres"
PG_TCP_DSN="host=127.0.0.1 port=$port user=postgres dbname=postgres"
STATE
