#!/usr/bin/env bash
# The DuetDB command-line client, with IoTDB's options:
#   sbin/start-cli.sh [-h HOST] [-p PORT] [-u USER] [-pw PASSWORD] [-e "SQL"] [-disableISO8601] [-maxPRC N]
set -euo pipefail
. "$(dirname "$0")/common.sh"
ensure_built duet-cli
exec "$DUETDB_BIN_DIR/duet-cli" "$@"
