#!/usr/bin/env bash
# Replication benchmark with both pipes of a dual-active pair running on this machine:
#  1. ingest throughput of the standard workload without pipes, then with pipes (overhead);
#  2. replication lag p50/p99 (write acknowledged on A -> readable on B) at a fixed rate;
#  3. catch-up: B stopped while A ingests the standard workload, then started: time to drain.
#   bench/replication.sh [LAG_RATE_PER_S]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
rate="${1:-500}"
(cd "$repo" && cargo build --release -q -p duet-server -p duet-bench -p duet-cli)
bin="$repo/target/release"
tmp=$(mktemp -d /tmp/duetrepl.XXXX)
pa=$((20000 + RANDOM % 10000)); pb=$((pa + 1)); pc=$((pa + 2))
pids=()
start() { # home port
  "$bin/duetdb" --home "$1" --rpc-address 127.0.0.1 --rpc-port "$2" >>"$1.log" 2>&1 &
  pids+=($!); echo $! >"$1.pid"
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$2) 2>/dev/null && return; sleep 0.1; done
  echo "server on $2 did not start" >&2; exit 1
}
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
cli() { "$bin/duet-cli" -p "$1" -e "$2" >/dev/null; }
remaining() { "$bin/duet-cli" -p "$1" -e "show pipe $2" | awk -F'|' 'NR==4 {gsub(/ /,"",$9); print $9}'; }

start "$tmp/solo" "$pc"
echo "-- without pipes"; "$bin/duet-bench" ingest --port "$pc" --prefix root.solo

start "$tmp/a" "$pa"; start "$tmp/b" "$pb"
extra="${SINK_EXTRA:-}"   # e.g. SINK_EXTRA=",'sink.batch.size-bytes'='8388608'"
cli "$pa" "create pipe AB with source('source.mode.double-living'='true') with sink('sink.ip'='127.0.0.1','sink.port'='$pb'$extra)"
cli "$pb" "create pipe BA with source('source.mode.double-living'='true') with sink('sink.ip'='127.0.0.1','sink.port'='$pa'$extra)"
echo "-- with both pipes running"; "$bin/duet-bench" ingest --port "$pa" --prefix root.paired
t0=$(date +%s.%N); while [ "$(remaining "$pa" AB)" != "0" ]; do sleep 0.05; done; t1=$(date +%s.%N)
echo "drained to B $(python3 -c "print(f'{$t1-$t0:.2f}')") s after the ingest returned"
echo "-- replication lag at $rate writes/s"; "$bin/duet-bench" lag --a "127.0.0.1:$pa" --b "127.0.0.1:$pb" --rate "$rate" --seconds 10

echo "-- catch-up"
kill -9 "$(cat "$tmp/b.pid")"
"$bin/duet-bench" ingest --port "$pa" --prefix root.catchup >/dev/null
before=$(remaining "$pa" AB)
r0=$(date +%s.%N); start "$tmp/b" "$pb"; t0=$(date +%s.%N)
while [ "$(remaining "$pa" AB)" != "0" ]; do sleep 0.02; done; t1=$(date +%s.%N)
python3 -c "r=$t0-$r0; s=$t1-$t0; print(f'catch-up: B recovered its own state in {r:.2f} s, then backlog_events=$before points=10000000 shipped and applied in {s:.2f} s: points_per_s={10000000/s:.0f} (with B recovery counted: {10000000/(s+r):.0f})')"
