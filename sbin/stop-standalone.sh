#!/usr/bin/env bash
# Stops the DuetDB instance of DUETDB_HOME gracefully (SIGTERM: the WAL is synced) and waits for it.
set -euo pipefail
. "$(dirname "$0")/common.sh"

if [ ! -f "$DUETDB_PIDFILE" ] || ! kill -0 "$(cat "$DUETDB_PIDFILE")" 2>/dev/null; then
  echo "DuetDB is not running (home $DUETDB_HOME)."
  rm -f "$DUETDB_PIDFILE"
  exit 0
fi
pid=$(cat "$DUETDB_PIDFILE")
kill -TERM "$pid"
for _ in $(seq 1 600); do
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$DUETDB_PIDFILE"
    echo "DuetDB stopped (pid $pid)."
    exit 0
  fi
  sleep 0.1
done
echo "DuetDB (pid $pid) did not stop within 60 s" >&2
exit 1
