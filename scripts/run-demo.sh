#!/usr/bin/env bash
# Runs the API with demo data: finds or starts PostgreSQL, migrates, loads the regions and the
# Pasardesa demo (idempotent), then serves on $PASAR_BIND (default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh
ensure_postgres
# The demo uses its own database beside the server's default one.
base=${DATABASE_URL%/*}
db=${PASAR_DEMO_DB:-pasar_demo}
if [ "${DATABASE_URL##*/}" = postgres ]; then
  cargo build --release --quiet
  psql_bin=$(pg_bin psql || true)
  if [ -n "$psql_bin" ]; then
    "$psql_bin" -q "$DATABASE_URL" -c "CREATE DATABASE $db" 2>/dev/null || true
    export DATABASE_URL="$base/$db"
  fi
else
  cargo build --release --quiet
fi
# A fresh random secret per run unless one is set (a fixed one would be public): tokens
# issued before a restart then no longer verify, so clients log in again.
if [ -z "${PASAR_JWT_SECRET:-}" ] && [ -z "${PASAR_JWT_KEYS:-}" ]; then
  PASAR_JWT_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  export PASAR_JWT_SECRET
fi
./target/release/pasar migrate
./target/release/pasar seed demo
echo "pasar: serving on http://${PASAR_BIND:-127.0.0.1:8080} (Swagger UI at /docs)" >&2
exec ./target/release/pasar serve --no-migrate
