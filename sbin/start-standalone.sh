#!/usr/bin/env bash
# Starts a DuetDB instance in the background and waits until it accepts clients.
# Usage: sbin/start-standalone.sh [-c key=value ...]   (extra options go to the server)
set -euo pipefail
. "$(dirname "$0")/common.sh"

ensure_built duetdb
mkdir -p "$DUETDB_HOME/logs" "$DUETDB_HOME/data"

if [ -f "$DUETDB_PIDFILE" ] && kill -0 "$(cat "$DUETDB_PIDFILE")" 2>/dev/null; then
  echo "DuetDB is already running (pid $(cat "$DUETDB_PIDFILE"), home $DUETDB_HOME)."
  exit 0
fi

log="$DUETDB_HOME/logs/duetdb.log"
conf_args=()
[ -f "$DUETDB_CONF" ] && conf_args=(--config "$DUETDB_CONF")
nohup "$DUETDB_BIN_DIR/duetdb" --home "$DUETDB_HOME" "${conf_args[@]}" "$@" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$DUETDB_PIDFILE"

addr=$(conf_get dn_rpc_address 0.0.0.0)
port=$(conf_get dn_rpc_port 6667)
for arg in "$@"; do
  case "$arg" in
    dn_rpc_address=*) addr="${arg#*=}" ;;
    dn_rpc_port=*) port="${arg#*=}" ;;
  esac
done
case "$addr" in 0.0.0.0|"") probe=127.0.0.1 ;; ::|"[::]") probe=::1 ;; *) probe="$addr" ;; esac

for _ in $(seq 1 600); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "DuetDB failed to start. Last lines of $log:" >&2
    tail -n 20 "$log" >&2
    rm -f "$DUETDB_PIDFILE"
    exit 1
  fi
  if (exec 3<>"/dev/tcp/$probe/$port") 2>/dev/null; then
    echo "DuetDB started (pid $pid), serving $addr:$port. Logs: $log"
    exit 0
  fi
  sleep 0.1
done
echo "DuetDB did not open $probe:$port within 60 s; see $log" >&2
exit 1
