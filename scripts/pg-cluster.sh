#!/usr/bin/env bash
# Throw-away PostgreSQL for tests and benchmarks: 127.0.0.1:$PGPORT, data under $PGROOT, trust auth.
#   scripts/pg-cluster.sh start   -> prints the postgresql:// URL of database $PGDB
#   scripts/pg-cluster.sh stop
#   scripts/pg-cluster.sh pause | resume   -> stop the server keeping its data / start it again
#   scripts/pg-cluster.sh restart          -> pause, wait $PGDOWN seconds (default 2), resume
# Installs Debian's postgresql when no server binaries are present (CI on a clean machine).
set -euo pipefail
PGROOT=${PGROOT:-/tmp/jppg}
PGPORT=${PGPORT:-54329}
PGDB=${PGDB:-juisteplek}
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

install_if_missing() {
  if [ -z "$(pgbin)" ]; then
    [ "$(id -u)" = 0 ] || {
      echo "PostgreSQL is not installed and installing it needs root: run 'apt-get install" \
        "postgresql' as root, or point JUISTEPLEK_TEST_POSTGRES_URL at a server of yours" >&2
      exit 1
    }
    echo "installing Debian's postgresql (apt-get) for a throw-away test cluster" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
  fi
}

case "${1:-start}" in
  start)
    install_if_missing
    bin=$(pgbin)
    if [ -f "$PGROOT/data/postmaster.pid" ]; then
      "${as_pg[@]}" "$bin/pg_ctl" -D "$PGROOT/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PGROOT"; mkdir -p "$PGROOT"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGROOT"; fi
    "${as_pg[@]}" "$bin/initdb" -D "$PGROOT/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      >"$PGROOT/initdb.log" 2>&1
    echo "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGROOT -c max_connections=300 ${PGEXTRA:-}" \
      >"$PGROOT/server.opts"
    "${as_pg[@]}" "$bin/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 60 \
      -o "$(cat "$PGROOT/server.opts")" start >/dev/null
    "${as_pg[@]}" "$bin/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres "$PGDB"
    echo "postgresql+asyncpg://postgres@127.0.0.1:$PGPORT/$PGDB"
    ;;
  pause)
    "${as_pg[@]}" "$(pgbin)/pg_ctl" -D "$PGROOT/data" -m fast -w stop >/dev/null
    ;;
  resume)
    "${as_pg[@]}" "$(pgbin)/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 60 \
      -o "$(cat "$PGROOT/server.opts")" start >/dev/null
    ;;
  restart)
    "$0" pause; sleep "${PGDOWN:-2}"; "$0" resume
    ;;
  stop)
    bin=$(pgbin)
    [ -n "$bin" ] && [ -d "$PGROOT/data" ] && \
      "${as_pg[@]}" "$bin/pg_ctl" -D "$PGROOT/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop|pause|resume|restart" >&2; exit 2 ;;
esac
