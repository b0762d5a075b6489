#!/usr/bin/env bash
# Runs every test of DuetDB: Rust unit tests, the integration crate (real server binary over the
# wire), and the end-to-end suite with the official apache-iotdb Python client (installed into
# .venv on first use). Needs only cargo and python3 with pip.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building (debug) =="
cargo build --workspace --bins --locked

echo "== Rust unit and integration tests =="
log=$(mktemp)
set +e
cargo test --workspace --locked --no-fail-fast >"$log" 2>&1
status=$?
set -e
grep -E '^(test result|running|error|failures:|---- )|FAILED|panicked' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "cargo test failed (exit $status); full output:" >&2
  cat "$log" >&2
  rm -f "$log"
  exit "$status"
fi
rm -f "$log"

echo "== end-to-end tests with the apache-iotdb Python client =="
DUETDB_BIN="$PWD/target/debug/duetdb" tests/python/run.sh

# Last, so that a lint a newer clippy adds does not keep the tests from running.
if cargo clippy --version >/dev/null 2>&1; then
  echo "== lints (clippy, warnings are errors) =="
  cargo clippy --workspace --all-targets --locked -q -- -D warnings
else
  echo "== lints skipped: cargo clippy is not installed =="
fi
