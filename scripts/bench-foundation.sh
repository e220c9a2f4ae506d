#!/usr/bin/env bash
# Foundation figures: region import (fresh and repeated), the cost of cloning a test database
# from the migrated template, and a few region/catalog requests. Prints figures; changes only
# databases named pasar_bench_*.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh
ensure_postgres
psql_bin=$(pg_bin psql)
cargo build --release --quiet
bin=./target/release/pasar
base=${DATABASE_URL%/*}
admin="$DATABASE_URL"
q() { "$psql_bin" -qAt "$admin" -c "$1"; }
q "DROP DATABASE IF EXISTS pasar_bench_a WITH (FORCE)"
q "CREATE DATABASE pasar_bench_a"
export DATABASE_URL="$base/pasar_bench_a"
$bin migrate >/dev/null
echo "== regions import (91,599 rows), fresh database"
/usr/bin/time -f "wall %e s, max RSS %M KiB" $bin regions import
echo "== regions import again (idempotent upsert)"
/usr/bin/time -f "wall %e s, max RSS %M KiB" $bin regions import
echo "== regions in the table: $(q "SELECT count(*) FROM regions" 2>/dev/null || "$psql_bin" -qAt "$DATABASE_URL" -c 'SELECT count(*) FROM regions')"
$bin seed demo >/dev/null
echo "== clone of a migrated database with all regions and the demo (CREATE DATABASE … TEMPLATE), 5 runs"
for i in 1 2 3 4 5; do
  q "DROP DATABASE IF EXISTS pasar_bench_clone WITH (FORCE)"
  start=$(date +%s%N)
  q "CREATE DATABASE pasar_bench_clone TEMPLATE pasar_bench_a"
  end=$(date +%s%N)
  echo "  clone $i: $(( (end - start) / 1000000 )) ms"
done
q "DROP DATABASE IF EXISTS pasar_bench_clone WITH (FORCE)"
echo "== requests (release build, 1 worker, sequential curl, 50 each)"
export PASAR_JWT_SECRET=bench-secret-bench-secret-bench-secret-00 PASAR_BIND=127.0.0.1:18099 PASAR_WORKERS=1
$bin serve --no-migrate >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:18099/healthz >/dev/null && break; sleep 0.1; done
for path in "/api/v1/regions/34.02.15.2004" "/api/v1/regions?q=panggungharja" "/api/v1/regions?q=sukamaju&level=4" \
            "/api/v1/products?q=kopi%20arabica" "/api/v1/products?region=34.02&sort=price_asc" "/api/v1/products?updated_since=2000-01-01T00:00:00Z&limit=100"; do
  total=0; worst=0
  for _ in $(seq 50); do
    t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:18099$path")
    ms=$(awk -v t="$t" 'BEGIN{printf "%d", t*1000000}')
    total=$((total + ms)); [ "$ms" -gt "$worst" ] && worst=$ms
  done
  echo "  GET $path: mean $((total / 50)) µs, worst $worst µs"
done
