#!/usr/bin/env bash
# Measures DuetDB next to VictoriaMetrics (and InfluxDB, when installed) on the standard workload, in
# one run on this machine (compare ratios: the machines are shared and noisy).
#   bench/compare-peers.sh [CLIENTS]
# Needs: cargo; for the peers, `apt-get install -y victoria-metrics influxdb` and ../shared/bench-peers.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
peers="${PEERS_DIR:-$repo/../shared/bench-peers}"
clients="${1:-4}"
(cd "$repo" && cargo build --release -q -p duet-server -p duet-bench)

if command -v victoria-metrics >/dev/null && [ -d "$peers" ]; then
  data=$(mktemp -d /tmp/peerdata.XXXX)
  python3 "$peers/gen.py" "$data" >/dev/null
  bash "$peers/run_vm.sh" "$data" || echo "victoria-metrics run failed"
  if command -v influxd >/dev/null; then bash "$peers/run_influx.sh" "$data" || echo "influxdb run failed"; fi
  rm -rf "$data"
else
  echo "(peers skipped: install victoria-metrics / influxdb and provide $peers)"
fi

home=$(mktemp -d /tmp/duetbench.XXXX)
port=$((20000 + RANDOM % 20000))
"$repo/target/release/duetdb" --home "$home" --rpc-address 127.0.0.1 --rpc-port "$port" >"$home/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$home"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
"$repo/target/release/duet-bench" ingest --port "$port" --clients "$clients" --data-dir "$home/data" --pid "$pid" --settle-secs 120
# Query latency over the same data, as it rests after the ingest (flushed and merged); VictoriaMetrics'
# figure above (q_avg10m_all_series_s) is its equivalent avg_over_time(...[10m]) query_range.
"$repo/target/release/duet-bench" query --port "$port"
