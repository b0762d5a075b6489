#!/usr/bin/env bash
# Replication benchmark (issue 5) with both pipes of a dual-active pair running on this machine:
#  1. ingest throughput of the standard workload (10 M points, 4 clients) on a single instance, then
#     on A with both pipes running: the ingest overhead of the pipes. Measured twice: on fresh
#     instances (the first 10 M points fit in one memtable: no flush runs during the measurement),
#     and sustained: the same instances take SUSTAIN_RUNS (default 2) more runs of the workload
#     (each under its own prefix; a pair drains in between), whose median is the rate of an
#     instance that flushes as it goes, as a running deployment does;
#  2. the maximum ingest rate: the highest offered rate that A, with both pipes running, sustains
#     while B keeps up. Offered by `duet-bench lag` (4 clients, insertTablet of 1000 rows x 10
#     sensors) on a fresh pair for LAG_WARMUP_S + LAG_PROBE_S seconds per candidate (measured:
#     the last LAG_PROBE_S); "keeps up" = every write arrived on B, A achieved
#     >= 95% of the offered rate and the p99 lag of the run's last quarter stayed <= 250 ms (a lag
#     that grows over the run means a backlog that grows). Candidates start at the rate at which
#     step 1 got everything to B (points / (ingest + drain time)) and step down by 20% until one is
#     sustained (or up by 25% until one is not), then the gap between the highest sustained and the
#     lowest failing rate is halved once (geometric mean);
#  3. replication lag p50/p99 (write acknowledged on A -> readable on B) at half of that rate, with
#     the same tablets; and at a light load (single points, LAG_RATE_PER_S writes/s). Each runs on a
#     fresh pair and is measured after LAG_WARMUP_S (default 10) s at the same load, so that
#     memtables, flushes and compactions are in their steady cycle (a process's first memtables grow
#     from fresh memory: page faults);
#  4. catch-up: B stopped while A ingests the standard workload, then started: the rate at which
#     the 10 M points are shipped and applied once the pipe has reconnected, against step 1's
#     single-instance rate (B's recovery and the pipe's retry wait are reported apart).
#  Steps 1, 3 (at half the maximum rate) and 4 run ROUNDS times (default 3) on fresh instances and
#  report medians: single runs move by +-20% on a shared machine, and a lag p99 by 2x (step 4
#  also does not inherit steps 2-3's data and background work).
#  PIN=1 emulates the deployment's two machines on this one: A, the single instance of step 1 and
#  every benchmark client run on CPU 0, B on CPU 1 (taskset), so that B's work does not take A's
#  CPU. Without it all processes share every CPU, and "overhead" includes B's apply work.
#   bench/replication.sh [LAG_RATE_PER_S]
#   env: DUET_BIN (binaries to test, default target/release after building), SINK_EXTRA (extra sink
#        parameters, e.g. ",'sink.batch.size-bytes'='8388608'"), LAG_PROBE_S (default 6), LAG_S (10),
#        LAG_WARMUP_S (10), ROUNDS (3), SUSTAIN_RUNS (2), STEPS (all; 1 = only the ingest overhead)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
rate="${1:-500}"
probe_s="${LAG_PROBE_S:-6}"; lag_s="${LAG_S:-10}"; warmup_s="${LAG_WARMUP_S:-10}"
if [ -z "${DUET_BIN:-}" ]; then (cd "$repo" && cargo build --release -q -p duet-server -p duet-bench -p duet-cli); fi
bin="${DUET_BIN:-$repo/target/release}"
tmp=$(mktemp -d /tmp/duetrepl.XXXX)
pa=$((20000 + RANDOM % 10000)); pb=$((pa + 1)); pc=$((pa + 2))
pids=()
if [ "${PIN:-0}" = 1 ]; then pin_a=(taskset -c 0); pin_b=(taskset -c 1); pin_client=(taskset -c 0); mode="pinned: A and clients on CPU 0, B on CPU 1"
else pin_a=(); pin_b=(); pin_client=(); mode="shared: every process on every CPU"; fi
# B_DIR=/some/dir puts B's data directories there (for example on another disk), so that B's WAL
# syncs and flushes do not queue behind A's on one device; without it both share $tmp's disk.
bdir=""; if [ -n "${B_DIR:-}" ]; then bdir=$(mktemp -d "$B_DIR/duetb.XXXX"); fi
echo "mode: $mode ($(nproc) CPUs); B's data: ${bdir:-on the same disk as A}"
start() { # home port
  local pin=("${pin_a[@]}")
  case "$1" in */b*) pin=("${pin_b[@]}")
    if [ -n "$bdir" ] && [ ! -e "$1" ]; then mkdir -p "$bdir/${1##*/}"; ln -s "$bdir/${1##*/}" "$1"; fi;; esac
  "${pin[@]}" "$bin/duetdb" --home "$1" --rpc-address 127.0.0.1 --rpc-port "$2" >>"$1.log" 2>&1 &
  pids+=($!); echo $! >"$1.pid"
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$2) 2>/dev/null && return; sleep 0.1; done
  echo "server on $2 did not start" >&2; exit 1
}
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp" ${bdir:+"$bdir"}; }
trap cleanup EXIT
cli() { "$bin/duet-cli" -p "$1" -e "$2" >/dev/null; }
remaining() { "$bin/duet-cli" -p "$1" -e "show pipe $2" | awk -F'|' 'NR==4 {gsub(/ /,"",$9); print $9}'; }
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p"; } # field NAME < line
calc() { python3 -c "print($1)"; }
# CPU seconds (user + system) a server has used since it started.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$(cat "$1.pid")/stat"; }
drain() { while [ "$(remaining "$pa" AB)" != "0" ]; do sleep 0.05; done; }
bench() { "${pin_client[@]}" "$bin/duet-bench" "$@"; }
lag() { bench lag --a "127.0.0.1:$pa" --b "127.0.0.1:$pb" "$@"; }
tablets=(--batch 1000 --sensors 10 --clients 4)

# Single runs move by +-20% on a shared machine: the single instance and the pair are measured
# ROUNDS times, alternately, each on fresh instances, and the medians compared.
rounds="${ROUNDS:-3}"
median() { python3 -c "import statistics,sys; print(round(statistics.median(map(float, sys.argv[1:]))))" "$@"; }
stop() { # home...
  local p; for h in "$@"; do kill "$(cat "$h.pid")" 2>/dev/null || true; done
  for h in "$@"; do p=$(cat "$h.pid"); while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
}
pair() { # suffix: a fresh A and B with both pipes
  start "$tmp/a$1" "$pa"; start "$tmp/b$1" "$pb"
  cli "$pa" "create pipe AB with source('source.mode.double-living'='true') with sink('sink.ip'='127.0.0.1','sink.port'='$pb'$extra)"
  cli "$pb" "create pipe BA with source('source.mode.double-living'='true') with sink('sink.ip'='127.0.0.1','sink.port'='$pa'$extra)"
}
extra="${SINK_EXTRA:-}"
echo "-- 1. ingest: a single instance, then A with both pipes running, alternately on fresh instances ($rounds rounds)"
solos=(); paireds=(); e2es=(); solo_sus=(); paired_sus=(); sustain_runs="${SUSTAIN_RUNS:-2}"
for r in $(seq "$rounds"); do
  [ "$r" = 1 ] || stop "$tmp/a$((r - 1))" "$tmp/b$((r - 1))"
  start "$tmp/solo$r" "$pc"
  solo_line=$(bench ingest --port "$pc" --prefix root.solo 2>/dev/null); echo "single: $solo_line cpu_s=$(cpu_s "$tmp/solo$r")"
  solos+=("$(field points_per_s <<<"$solo_line")")
  for k in $(seq "$sustain_runs"); do
    line=$(bench ingest --port "$pc" --prefix "root.solo$k" 2>/dev/null); echo "  sustained $k: $line"
    solo_sus+=("$(field points_per_s <<<"$line")")
  done
  stop "$tmp/solo$r"
  pair "$r"
  paired_line=$(bench ingest --port "$pa" --prefix root.paired 2>/dev/null); echo "paired: $paired_line"
  paireds+=("$(field points_per_s <<<"$paired_line")"); secs=$(field seconds <<<"$paired_line")
  t0=$(date +%s.%N); drain; t1=$(date +%s.%N)
  drained=$(calc "$t1-$t0"); e2es+=("$(calc "round(10000000/($secs+$drained))")")
  echo "        drained to B $(calc "f'{$drained:.2f}'") s after the ingest returned: everything on B at points_per_s=${e2es[-1]}"
  # Where the pair's CPU went (each server's total since its start, which was moments before).
  echo "        cpu_s: A=$(cpu_s "$tmp/a$r") B=$(cpu_s "$tmp/b$r")"
  for k in $(seq "$sustain_runs"); do
    line=$(bench ingest --port "$pa" --prefix "root.paired$k" 2>/dev/null); echo "  sustained $k: $line"
    paired_sus+=("$(field points_per_s <<<"$line")"); drain
  done
done
solo=$(median "${solos[@]}"); paired=$(median "${paireds[@]}"); e2e=$(median "${e2es[@]}")
solo_s=$(median "${solo_sus[@]}"); paired_s=$(median "${paired_sus[@]}")
echo "medians: single instance points_per_s=$solo, A with pipes points_per_s=$paired, everything on B points_per_s=$e2e"
echo "medians, sustained: single instance points_per_s=$solo_s, A with pipes points_per_s=$paired_s"
stop "$tmp/a$rounds" "$tmp/b$rounds"
[ "${STEPS:-all}" = 1 ] && exit 0
# Steps 2 and 3 run each measurement on a fresh pair after a warm-up at the same load: a pair that
# carried over the data of earlier candidates would be measured with ever more data to compact.
probe() { # suffix rate seconds -> the lag line
  pair "$1"
  lag --point-rate "$2" "${tablets[@]}" --warmup "$warmup_s" --seconds "$3"
  stop "$tmp/a$1" "$tmp/b$1"; rm -rf "$tmp/a$1" "$tmp/b$1"
}

echo "-- 2. maximum ingest rate: A with both pipes sustains it and B keeps up (each candidate on a fresh pair, $probe_s s measured after $warmup_s s)"
cand=$e2e; best=""; failed=""; n=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
  n=$((n + 1)); line=$(probe "m$n" "$cand" "$probe_s"); echo "$line"
  if [ "$(field backlog <<<"$line")" = bounded ]; then
    best=$cand; [ -n "$failed" ] && break
    cand=$(calc "round($cand*1.25)")   # the upper bound held (a busy machine during step 1): go up
  else
    failed=$cand; [ -n "$best" ] && break
    cand=$(calc "round($cand*0.8)")
  fi
done
if [ -n "$best" ] && [ -n "$failed" ]; then
  mid=$(calc "round(($best*$failed)**0.5)")
  n=$((n + 1)); line=$(probe "m$n" "$mid" "$probe_s"); echo "$line"
  if [ "$(field backlog <<<"$line")" = bounded ]; then best=$mid; fi
fi
[ -n "$best" ] || { echo "no candidate rate was sustained" >&2; exit 1; }
half=$(calc "round($best/2)")
echo "maximum ingest rate (A with both pipes, B keeping up): points_per_s=$best; half: $half"

echo "-- 3. replication lag at half the maximum ingest rate ($half points/s, tablets of 10000 points; $rounds runs, each on a fresh pair, $lag_s s measured after $warmup_s s)"
p50s=(); p99s=()
for r in $(seq "$rounds"); do
  half_line=$(probe "h$r" "$half" "$lag_s"); echo "$half_line"
  p50s+=("$(field p50_ms <<<"$half_line")"); p99s+=("$(field p99_ms <<<"$half_line")")
done
fmedian() { python3 -c "import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))" "$@"; }
half_p50=$(fmedian "${p50s[@]}"); half_p99=$(fmedian "${p99s[@]}")
echo "medians of $rounds runs: p50_ms=$half_p50 p99_ms=$half_p99 (p99 of each run: ${p99s[*]})"
echo "-- 3. replication lag at a light load ($rate single-point writes/s; fresh pair, $lag_s s measured after $warmup_s s)"
pair l
lag --rate "$rate" --warmup "$warmup_s" --seconds "$lag_s"
stop "$tmp/al" "$tmp/bl"; rm -rf "$tmp/al" "$tmp/bl"

echo "-- 4. catch-up ($rounds rounds, each on a fresh pair: B stopped while A ingests the standard workload, then started)"
catchups=()
for r in $(seq "$rounds"); do
  pair "c$r"
  cli "$pa" "create database root.catchup"; sleep 1
  kill -9 "$(cat "$tmp/bc$r.pid")"; while kill -0 "$(cat "$tmp/bc$r.pid")" 2>/dev/null; do sleep 0.05; done
  bench ingest --port "$pa" --prefix root.catchup 2>/dev/null
  before=$(remaining "$pa" AB)
  r0=$(date +%s.%N); start "$tmp/bc$r" "$pb"; t0=$(date +%s.%N)
  while [ "$(remaining "$pa" AB)" != "0" ]; do sleep 0.02; done; t1=$(date +%s.%N)
  # The pipe reconnects on its retry schedule (capped exponential backoff, up to 10 s): the rate is
  # measured from its reconnection (A's log), and the wait for it is reported apart. B's start is
  # taken from its own log ("ready for clients"): the port poll above only looks every 0.1 s.
  logtime() { python3 -c "
import datetime, sys
lines = [l for l in open('$1') if all(w in l for w in sys.argv[1:])]
print(datetime.datetime.strptime(lines[-1].split()[0], '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc).timestamp())" "${@:2}"; }
  tc=$(logtime "$tmp/ac$r.log" 'pipe connected' 'pipe=AB'); t0=$(logtime "$tmp/bc$r.log" 'ready for clients')
  catchups+=("$(calc "round(10000000/($t1-$tc))")")
  python3 -c "r=$t0-$r0; w=$tc-$t0; s=$t1-$tc; print(f'catch-up: B recovered its own state in {r:.2f} s, the pipe reconnected {w:.2f} s later, then backlog_events=$before points=10000000 shipped and applied in {s:.2f} s: points_per_s={10000000/s:.0f} (counting B recovery and the reconnection: {10000000/(s+r+w):.0f})')"
  stop "$tmp/ac$r" "$tmp/bc$r"
done
catchup=$(median "${catchups[@]}")
echo "median catch-up: points_per_s=$catchup"

echo "-- summary (targets of issue 5; $mode)"
python3 - "$solo" "$paired" "$best" "$half" "$half_p50" "$half_p99" "$catchup" "$solo_s" "$paired_s" <<'PY'
import sys
solo, paired, best, half, p50, p99, catchup, solo_s, paired_s = map(float, sys.argv[1:])
ov = (1 - paired / solo) * 100
ov_s = (1 - paired_s / solo_s) * 100
cu = catchup / solo * 100
print(f"ingest overhead with pipes, fresh instances: {ov:.1f}% (target <= 15%)  [medians: {solo:.0f} -> {paired:.0f} points/s]")
print(f"ingest overhead with pipes, sustained (flushing): {ov_s:.1f}% (target <= 15%)  [medians: {solo_s:.0f} -> {paired_s:.0f} points/s]")
print(f"replication lag at half the maximum ingest rate ({half:.0f} of {best:.0f} points/s), medians of the runs: p50 {p50:.2f} ms, p99 {p99:.2f} ms (target p99 <= 10 ms)")
print(f"catch-up: median {catchup:.0f} points/s = {cu:.0f}% of the single-instance ingest rate (target >= 50%)")
PY
