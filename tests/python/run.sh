#!/usr/bin/env bash
# Runs the Python end-to-end suite against the DuetDB server binary.
#
#   tests/python/run.sh                 # whole suite
#   tests/python/run.sh -k crash -x     # extra args go to pytest
#
# Env: DUETDB_BIN (default $REPO/target/debug/duetdb), PYTHON (default python3).
# Creates $REPO/.venv on first use; reinstalls requirements only when
# requirements.txt changes (hash kept in a stamp file inside the venv).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$REPO/.venv"
REQ="$REPO/tests/python/requirements.txt"
PY="${PYTHON:-python3}"
STAMP="$VENV/.duetdb-requirements.sha256"

venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

if ! venv_ok; then
    rm -rf "$VENV"
    if ! "$PY" -m venv "$VENV" >/dev/null 2>&1 || ! venv_ok; then
        # e.g. Debian/Ubuntu without python3-venv (no ensurepip): use virtualenv instead.
        rm -rf "$VENV"
        if ! "$PY" -m virtualenv --version >/dev/null 2>&1; then
            "$PY" -m pip install -q --user --disable-pip-version-check virtualenv \
                || "$PY" -m pip install -q --user --disable-pip-version-check --break-system-packages virtualenv
        fi
        "$PY" -m virtualenv -q "$VENV"
    fi
    venv_ok || { echo "run.sh: could not create a working venv at $VENV" >&2; exit 1; }
fi

HASH="$("$VENV/bin/python" - "$REQ" <<'PYEOF'
import hashlib, sys
h = hashlib.sha256(open(sys.argv[1], "rb").read())
h.update(sys.version.encode())
print(h.hexdigest())
PYEOF
)"

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
    PIP_NO_INPUT=1 "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    printf '%s\n' "$HASH" >"$STAMP"
fi

cd "$REPO"
exec "$VENV/bin/python" -m pytest -q tests/python "$@"
