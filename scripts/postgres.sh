#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (and for trying the service on PostgreSQL).
#   bash scripts/postgres.sh start   # initdb + start on a free 127.0.0.1 port; prints a SQLAlchemy URL on stdout
#   bash scripts/postgres.sh stop    # stop it and delete its data
#   bash scripts/postgres.sh url     # print the URL of the running server
# Uses PG_BIN if set; else the PostgreSQL 16 with pgvector of the pgserver package in .venv (the dev extra: the
# service tests' PostgreSQL case runs on pgvector); else the newest Debian /usr/lib/postgresql/*/bin. PG_PORT
# picks the port (default: a free one). As root it runs the server as the 'postgres' user (runuser); as any
# other user, as that user. State: var/postgres.env.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=var/postgres.env
DB=techmatch_test

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local dir
  dir=$(.venv/bin/python -c 'import importlib.util as u; s = u.find_spec("pgserver"); print(s.submodule_search_locations[0] + "/pginstall/bin")' 2>/dev/null || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    echo "error: PostgreSQL binaries not found (apt-get install postgresql, or set PG_BIN)" >&2
    exit 1
  fi
  echo "$dir"
}

as_owner() {  # run a command as the server's owner
  if [ "$(id -u)" = "0" ]; then runuser -u "$OWNER" -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

url() { echo "postgresql+psycopg://$OWNER@127.0.0.1:$PORT/$DB"; }

running() {
  [ -f "$STATE" ] || return 1
  # shellcheck disable=SC1090
  . "$STATE"
  as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

start() {
  if running; then url; return; fi
  BIN=$(pg_bin)
  OWNER=$(id -un)
  if [ "$(id -u)" = "0" ]; then
    OWNER=postgres
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  fi
  ROOT=$(mktemp -d /tmp/techmatch-pg.XXXXXX)
  chmod 755 "$ROOT"
  if [ "$(id -u)" = "0" ] && ! runuser -u "$OWNER" -- test -x "$BIN/initdb"; then
    # The owner cannot reach binaries inside this checkout (a private folder): run a copy (34 MB for pgserver's,
    # with the libraries its programs find beside them).
    mkdir -p "$ROOT/pg/pgserver"
    cp -a "$BIN/.." "$ROOT/pg/pgserver/pginstall"
    [ -d "$BIN/../../../pgserver.libs" ] && cp -a "$BIN/../../../pgserver.libs" "$ROOT/pg/"
    BIN=$ROOT/pg/pgserver/pginstall/bin
  fi
  DATA=$ROOT/data
  PORT=${PG_PORT:-$(free_port)}
  [ "$(id -u)" = "0" ] && chown "$OWNER" "$ROOT"
  as_owner "$BIN/initdb" -D "$DATA" -U "$OWNER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$ROOT/initdb.log" 2>&1 \
    || { echo "error: initdb failed, see $ROOT/initdb.log" >&2; exit 1; }
  as_owner "$BIN/pg_ctl" start -D "$DATA" -w -t 60 -l "$ROOT/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $ROOT -c fsync=on -c max_connections=100" >/dev/null \
    || { echo "error: PostgreSQL did not start, see $ROOT/server.log" >&2; exit 1; }
  as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$OWNER" "$DB"
  mkdir -p var
  printf 'BIN=%q\nOWNER=%q\nROOT=%q\nDATA=%q\nPORT=%q\n' "$BIN" "$OWNER" "$ROOT" "$DATA" "$PORT" >"$STATE"
  url
}

stop() {
  if [ ! -f "$STATE" ]; then echo "no server started by this script" >&2; return 0; fi
  # shellcheck disable=SC1090
  . "$STATE"
  as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast >/dev/null 2>&1 || true
  rm -rf "$ROOT" "$STATE"
  echo "stopped" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) if running; then url; else echo "error: not running (bash scripts/postgres.sh start)" >&2; exit 1; fi ;;
  *) echo "usage: bash scripts/postgres.sh start|stop|url" >&2; exit 2 ;;
esac
