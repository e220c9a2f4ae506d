#!/usr/bin/env bash
# Contract testing: runs schemathesis (pinned, in its own venv) with every check against a
# release `pasar serve` loaded with the demo data, two identities of different villages, and
# the stateful phase (the OpenAPI links). Exits non-zero on any failure.
#
#   scripts/schemathesis.sh            # the CI run (about 3 minutes once built)
#   ST_MAX_EXAMPLES=50 scripts/schemathesis.sh --include-path-regex '^/api/v1/products'
#
# Extra arguments go to `st run`. Environment: ST_MAX_EXAMPLES (per operation, default 12),
# ST_SEED (default 2026), ST_MAX_TIME (seconds for the run, default 150), PASAR_ST_DB (the
# database, dropped and recreated each run, default pasar_schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ST_VERSION=4.32.5
venv="$root/.venv-schemathesis"

# 1. schemathesis, pinned, in a venv of its own (reused when it has the right version).
# Python 3.13 when there is one: 3.11 builds before 3.11.9 crash in the coverage phase
# ("AST constructor recursion depth mismatch", a CPython bug hypothesis trips over).
py=python3
for candidate in python3.13 "$HOME/.pyenv/versions/3.13.0/bin/python3.13"; do
  if "$candidate" -c 'import venv' >/dev/null 2>&1; then py=$candidate; break; fi
done
if ! "$venv/bin/st" --version 2>/dev/null | grep -qx "st, version $ST_VERSION"; then
  echo "schemathesis: installing schemathesis==$ST_VERSION into $venv with $py" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

# 2. The release binary (cargo rebuilds only what changed), unless PASAR_BIN names one.
if [ -z "${PASAR_BIN:-}" ]; then
  cargo build --release --quiet --locked
fi
bin=${PASAR_BIN:-"$root/target/release/pasar"}

# 3. PostgreSQL, and a database of our own, new each run.
source scripts/pg.sh
ensure_postgres
psql_bin=$(pg_bin psql) || { echo "schemathesis: psql is needed" >&2; exit 1; }
db=${PASAR_ST_DB:-pasar_schemathesis}
admin_url="${DATABASE_URL%/*}/postgres"
"$psql_bin" -q "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
"$psql_bin" -q "$admin_url" -c "CREATE DATABASE $db"
export DATABASE_URL="${DATABASE_URL%/*}/$db"
PASAR_JWT_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export PASAR_JWT_SECRET
export PASAR_TIMER_INTERVAL_MS=0 RUST_LOG=${RUST_LOG:-warn}
"$bin" migrate
"$bin" seed demo >/dev/null

# 4. The server, on a free port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
work=$(mktemp -d)
log="$work/server.log"
PASAR_BIND="127.0.0.1:$port" "$bin" serve --no-migrate >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done

# 5. Two identities in different villages: the admins of Panggungharjo and Guwosari.
login() {
  curl -fsS "$url/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"phone\":\"$1\",\"password\":\"pasar-demo-2026\",\"village_code\":\"$2\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
token_a=$(login +628120010001 34.02.15.2004)
token_b=$(login +628120020001 34.02.07.2003)
cat >"$work/auth.json" <<JSON
{
  "schemaVersion": "0.1.0",
  "auth": [
    {"name": "panggungharjo-admin",
     "fixedHeaders": [{"name": "Authorization", "value": "Bearer $token_a"}]},
    {"name": "guwosari-admin",
     "fixedHeaders": [{"name": "Authorization", "value": "Bearer $token_b"}]}
  ]
}
JSON

# 6. schemathesis: every check, every phase (stateful included), seeded, bounded in time.
#    schemathesis.toml (beside this script's repository root) holds the per-operation settings.
status=0
timeout --signal=INT --kill-after=20 "${ST_TIMEOUT:-230}" \
  "$venv/bin/st" --config-file "$root/schemathesis.toml" run "$url/openapi.yaml" \
  --url "$url" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --auth-wfc "$work/auth.json" \
  --max-examples "${ST_MAX_EXAMPLES:-12}" \
  --seed "${ST_SEED:-2026}" \
  --generation-deterministic \
  --max-time "${ST_MAX_TIME:-150}" \
  --request-timeout 10 \
  --workers 2 \
  --no-color \
  "$@" || status=$?
if [ "$status" != 0 ]; then
  echo "schemathesis: failed (exit $status); the server's log follows" >&2
  grep -E 'ERROR|panicked' "$log" | tail -n 50 >&2 || true
fi
exit "$status"
