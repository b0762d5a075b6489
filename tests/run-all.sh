#!/usr/bin/env bash
# Runs every test of DuetDB: Rust unit tests, the integration crate (real server binary over the
# wire), and the end-to-end suite with the official apache-iotdb Python client (installed into
# .venv on first use). Needs only cargo and python3 with pip.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building (debug) =="
cargo build --workspace --bins --locked

echo "== Rust unit and integration tests =="
cargo test --workspace --locked --no-fail-fast 2>&1 | tee /tmp/duetdb-cargo-test.$$ | grep -E '^(test result|running|error|failures:|---- )|FAILED|panicked' || true
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "cargo test failed; full output:" >&2
  cat /tmp/duetdb-cargo-test.$$ >&2
  rm -f /tmp/duetdb-cargo-test.$$
  exit "$status"
fi
rm -f /tmp/duetdb-cargo-test.$$

echo "== end-to-end tests with the apache-iotdb Python client =="
DUETDB_BIN="$PWD/target/debug/duetdb" tests/python/run.sh
