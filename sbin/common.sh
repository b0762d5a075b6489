# Shared by the sbin scripts: locations and configuration lookups.
# DUETDB_HOME: the instance's home (config in conf/, data in data/, logs in logs/); defaults to the
# repository this script lives in. The binaries always come from that repository's target/release.
DUETDB_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DUETDB_HOME="${DUETDB_HOME:-$DUETDB_REPO}"
DUETDB_CONF="${DUETDB_CONF:-$DUETDB_HOME/conf/iotdb-system.properties}"
DUETDB_PIDFILE="$DUETDB_HOME/data/duetdb.pid"
# Where the binaries are; set DUETDB_BIN_DIR to use another build (the tests use target/debug).
DUETDB_BIN_DIR="${DUETDB_BIN_DIR:-$DUETDB_REPO/target/release}"

# conf_get KEY DEFAULT: the last value of KEY in the configuration file, or DEFAULT.
conf_get() {
  local v=""
  if [ -f "$DUETDB_CONF" ]; then
    v=$(grep -E "^[[:space:]]*$1[[:space:]]*=" "$DUETDB_CONF" | tail -n 1 | sed -E 's/^[^=]*=[[:space:]]*//; s/[[:space:]]*$//')
  fi
  echo "${v:-$2}"
}

# ensure_built BIN: builds the release binaries when they are missing or older than the sources
# (cargo does nothing when they are current). With DUETDB_BIN_DIR set, uses what is there.
ensure_built() {
  if [ "$DUETDB_BIN_DIR" != "$DUETDB_REPO/target/release" ]; then
    if [ ! -x "$DUETDB_BIN_DIR/$1" ]; then
      echo "$DUETDB_BIN_DIR/$1 does not exist (DUETDB_BIN_DIR)" >&2
      exit 1
    fi
    return
  fi
  if command -v cargo >/dev/null 2>&1 && [ -f "$DUETDB_REPO/Cargo.toml" ]; then
    if [ ! -x "$DUETDB_BIN_DIR/$1" ]; then
      echo "Building DuetDB (release; the first build takes a few minutes)..." >&2
    fi
    (cd "$DUETDB_REPO" && cargo build --release --locked -q -p duet-server -p duet-cli) >&2 || { echo "build failed" >&2; exit 1; }
  elif [ ! -x "$DUETDB_BIN_DIR/$1" ]; then
    echo "cargo is needed to build DuetDB (https://rustup.rs)" >&2
    exit 1
  fi
}
