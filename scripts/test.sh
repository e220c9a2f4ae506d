#!/usr/bin/env bash
# Runs the whole test suite against a real PostgreSQL (found or started by scripts/pg.sh).
# Each test gets its own database cloned from a migrated template. Extra arguments go to the
# test runner (cargo nextest when installed, else cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh
ensure_postgres
export PASAR_TEST_DATABASE_URL="$DATABASE_URL"
# Databases left by an interrupted earlier run (each test drops its own when it ends).
if psql_bin=$(pg_bin psql); then
  "$psql_bin" -qAt "$DATABASE_URL" -c "SELECT datname FROM pg_database WHERE datname LIKE 'pasar\_test\_%'" \
    | while read -r stale; do "$psql_bin" -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$stale\" WITH (FORCE)"; done
fi
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
