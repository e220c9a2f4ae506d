#!/usr/bin/env bash
# Checkout benchmark (a benchmark, not a test: it prints figures and asserts nothing).
#
# Finds or starts PostgreSQL (scripts/pg.sh), creates a fresh database pasar_bench_orders, builds
# the release binary, migrates and loads the regions and the demo, then adds the bench
# population with SQL: 32 buyers (members of Panggungharjo) funded through balanced ledger
# transactions (cash -> wallet; balances change only through postings), and products of shops
# of the four other villages with a huge stock. It serves on a free 127.0.0.1 port, logs the
# buyers in over HTTP and drives checkouts with 32 concurrent closed-loop buyers (wrk, one
# connection per buyer, scripts/bench-orders.lua) for BENCH_SECONDS; then accept -> ship ->
# confirm on the orders just placed (scripts/bench-orders-transitions.py, bounded by
# BENCH_TRANSITION_ORDERS and BENCH_TRANSITION_SECONDS); then the global ledger check; then the
# database round trips of one checkout, counted from PostgreSQL's statement log.
#
# Knobs: BENCH_SECONDS (20), BENCH_BUYERS (32), BENCH_WORKERS (2), BENCH_POOL (8),
# BENCH_TRANSITION_ORDERS (1500), BENCH_TRANSITION_SECONDS (20), BENCH_KEEP_DB=1 keeps the
# database. Changes only the database pasar_bench_orders; everything listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${BENCH_SECONDS:-20}
buyers=${BENCH_BUYERS:-32}
workers=${BENCH_WORKERS:-2}
pool=${BENCH_POOL:-8}
transition_orders=${BENCH_TRANSITION_ORDERS:-1500}
transition_seconds=${BENCH_TRANSITION_SECONDS:-20}
db=pasar_bench_orders
buyer_village=34.02.15.2004 # Panggungharjo

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench: wrk is missing; installing it (apt-get install -y wrk)" >&2
    apt-get install -y wrk >/dev/null || true
  fi
  if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: this benchmark needs wrk (Debian: sudo apt-get install wrk); cannot run without it" >&2
    exit 1
  fi
fi
command -v python3 >/dev/null || { echo "bench: python3 is needed for the transition phase" >&2; exit 1; }

source scripts/pg.sh
ensure_postgres
psql_bin=$(pg_bin psql)
admin_url=$DATABASE_URL
base=${DATABASE_URL%/*}
bench_url="$base/$db"

work=$(mktemp -d /tmp/pasar-bench-orders.XXXXXX)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
cleanup() {
  stop_server
  if [ "${BENCH_KEEP_DB:-0}" != 1 ]; then
    "$psql_bin" -qAt "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

qa() { "$psql_bin" -v ON_ERROR_STOP=1 -qAt "$admin_url" -c "$1"; }
qb() { "$psql_bin" -v ON_ERROR_STOP=1 -qAtX "$bench_url" "$@"; }

echo "== machine"
echo "nproc: $(nproc)"
free -h | sed -n 1,2p
echo "PostgreSQL: $(qa 'SHOW server_version') at ${admin_url%/*} (fsync=$(qa 'SHOW fsync'), synchronous_commit=$(qa 'SHOW synchronous_commit'), shared_buffers=$(qa 'SHOW shared_buffers'))"

echo "== build (release)"
cargo build --release --quiet
bin=./target/release/pasar

qa "DROP DATABASE IF EXISTS $db WITH (FORCE)"
qa "CREATE DATABASE $db"
export DATABASE_URL=$bench_url
$bin migrate >/dev/null
/usr/bin/time -f "seed demo: wall %e s" $bin seed demo | tail -n 3

echo "== bench population: $buyers buyers of $buyer_village, products with a huge stock"
qb -v buyers="$buyers" -v village="$buyer_village" <<'SQL'
BEGIN;
-- The buyers share the demo password (its hash is copied: argon2 per row would take minutes).
INSERT INTO users (id, phone, name, password_hash)
SELECT uuid_v7(), '+62813990' || lpad(n::text, 5, '0'), 'Pembeli Bench ' || n,
       (SELECT password_hash FROM users WHERE phone = '+628120010003')
  FROM generate_series(1, :buyers) n;
INSERT INTO memberships (user_id, village_code, roles)
SELECT id, :'village', ARRAY['member'] FROM users WHERE phone LIKE '+62813990%';
-- Funding: one balanced top-up per buyer, cash -> wallet (the postings trigger moves the balances).
CREATE TEMP TABLE funding AS
SELECT uuid_v7() AS tx, w.id AS wallet
  FROM accounts w JOIN users u ON u.id = w.user_id
 WHERE w.kind = 'user_wallet' AND u.phone LIKE '+62813990%';
INSERT INTO ledger_transactions (id, kind, note) SELECT tx, 'topup', 'bench funding' FROM funding;
INSERT INTO postings (id, transaction_id, account_id, amount_idr)
SELECT uuid_v7(), tx, (SELECT id FROM accounts WHERE kind = 'cash' AND village_code = :'village'),
       -1000000000000 FROM funding
UNION ALL
SELECT uuid_v7(), tx, wallet, 1000000000000 FROM funding;
-- Six cheap active products in two shops of each other village, with a huge stock.
UPDATE products SET stock = 100000000
 WHERE id IN (SELECT id FROM (
        SELECT p.id, row_number() OVER (PARTITION BY p.village_code ORDER BY p.shop_id, p.name) AS r
          FROM products p JOIN shops s ON s.id = p.shop_id
         WHERE p.village_code <> :'village' AND p.status = 'active' AND s.status = 'active'
           AND s.kind IN ('bumdes_unit', 'umkm') AND p.final_price_idr <= 60000) x
       WHERE r <= 6);
COMMIT;
ANALYZE;
SQL
qb -c "SELECT id FROM products WHERE stock = 100000000 ORDER BY id" >"$work/products"
qb -c "SELECT phone FROM users WHERE phone LIKE '+62813990%' ORDER BY phone" >"$work/buyer_phones"
echo "buyers: $(wc -l <"$work/buyer_phones"), funded Rp 1.000.000.000.000 each; bench products: $(wc -l <"$work/products") in $(qb -c "SELECT count(DISTINCT shop_id) FROM products WHERE stock = 100000000") shops"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
start_server() { # pool size
  PASAR_BIND="127.0.0.1:$port" PASAR_WORKERS=$workers PASAR_DB_POOL_SIZE=$1 PASAR_TIMER_INTERVAL_MS=0 \
    PASAR_JWT_SECRET=$secret PASAR_LOGIN_LIMIT_IP=1000 \
    $bin serve --no-migrate >>"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    curl -sf "$url/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: the server did not become ready; its log:" >&2
  tail -n 30 "$work/server.log" >&2
  exit 1
}
login() { # phone village -> token
  curl -sf --max-time 10 "$url/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"phone\":\"$1\",\"password\":\"pasar-demo-2026\",\"village_code\":\"$2\"}" | jq -er .access_token
}

start_server "$pool"
echo "== server: pasar serve (release) on $url, PASAR_WORKERS=$workers, PASAR_DB_POOL_SIZE=$pool, timers off"
: >"$work/tokens"
: >"$work/phone_tokens"
while read -r phone; do
  t=$(login "$phone" "$buyer_village")
  echo "$t" >>"$work/tokens"
  printf '%s\t%s\n' "$phone" "$t" >>"$work/phone_tokens"
done <"$work/buyer_phones"
echo "logged in: $(wc -l <"$work/tokens") buyers"

echo "== phase 1: checkouts, $buyers concurrent closed-loop buyers, ${seconds} s (wrk -t$buyers -c$buyers)"
orders_before=$(qb -c "SELECT count(*) FROM orders")
wrk -t"$buyers" -c"$buyers" -d"${seconds}s" --timeout 10s -s scripts/bench-orders.lua "$url" \
  -- "$work/tokens" "$work/products" "$$" | sed -n '/^checkouts answered/,$p'
orders_after=$(qb -c "SELECT count(*) FROM orders")
made=$((orders_after - orders_before))
echo "orders created: $made ($(awk -v n="$made" -v s="$seconds" 'BEGIN { printf "%.1f", n / s }') orders/s; a checkout of lines from two shops makes two orders)"
qb -c "SELECT 'lines per checkout: ' || string_agg(n || ' lines ' || c, ', ' ORDER BY n) FROM (
         SELECT n, count(*) c FROM (SELECT o.checkout_id, count(*) n FROM orders o JOIN order_lines l ON l.order_id = o.id
           JOIN users u ON u.id = o.buyer_user_id WHERE u.phone LIKE '+62813990%' GROUP BY 1) x GROUP BY n) y"

echo "== phase 2: accept -> ship -> confirm on up to $transition_orders of those orders, ${transition_seconds} s at most"
qb -F $'\t' -c "SELECT DISTINCT u.phone, s.village_code FROM orders o
                  JOIN shop_operators so ON so.shop_id = o.shop_id JOIN users u ON u.id = so.user_id
                  JOIN shops s ON s.id = o.shop_id JOIN users b ON b.id = o.buyer_user_id
                 WHERE b.phone LIKE '+62813990%'" >"$work/sellers"
while IFS=$'\t' read -r phone village; do
  printf '%s\t%s\n' "$phone" "$(login "$phone" "$village")" >>"$work/phone_tokens"
done <"$work/sellers"
qb -F $'\t' -c "SELECT o.id, (SELECT u.phone FROM shop_operators so JOIN users u ON u.id = so.user_id
                               WHERE so.shop_id = o.shop_id ORDER BY u.phone LIMIT 1), b.phone
                  FROM orders o JOIN users b ON b.id = o.buyer_user_id
                 WHERE b.phone LIKE '+62813990%' AND o.status = 'placed'
                 ORDER BY o.id LIMIT $transition_orders" >"$work/orders"
python3 scripts/bench-orders-transitions.py "$url" "$work/phone_tokens" "$work/orders" "$transition_seconds"
qb -c "SELECT 'bench orders by status: ' || string_agg(status || ' ' || c, ', ' ORDER BY status) FROM (
         SELECT o.status, count(*) c FROM orders o JOIN users u ON u.id = o.buyer_user_id
          WHERE u.phone LIKE '+62813990%' GROUP BY 1) x"
stop_server

echo "== global ledger check (as pasar::ledger::check)"
qb -c "SELECT 'unbalanced transactions ' ||
         (SELECT count(*) FROM (SELECT transaction_id FROM postings GROUP BY 1 HAVING sum(amount_idr) <> 0) u) ||
         ', wrong balances ' || (SELECT count(*) FROM accounts a
            WHERE a.balance_idr <> COALESCE((SELECT sum(amount_idr) FROM postings p WHERE p.account_id = a.id), 0)) ||
         ', overdrawn ' || (SELECT count(*) FROM accounts WHERE kind <> 'cash' AND balance_idr < 0) ||
         ', sum of all balances ' || (SELECT COALESCE(sum(balance_idr), 0) FROM accounts) ||
         ', postings ' || (SELECT count(*) FROM postings)"

echo "== database round trips of one checkout (1 line), from PostgreSQL's statement log"
logfile=""
if datadir=$(qa "SHOW data_directory" 2>/dev/null); then
  current=$(qa "SELECT COALESCE(pg_current_logfile(), '')" 2>/dev/null || true)
  if [ -n "$current" ]; then
    case $current in /*) logfile=$current ;; *) logfile="$datadir/$current" ;; esac
  elif [ -r "$datadir/server.log" ]; then
    logfile="$datadir/server.log" # the private cluster of scripts/pg.sh
  else
    major=$(qa "SHOW server_version_num" 2>/dev/null | cut -c1-2)
    logfile="/var/log/postgresql/postgresql-$major-main.log" # Debian's packaged cluster
  fi
fi
if [ -z "$logfile" ] || [ ! -r "$logfile" ]; then
  echo "cannot read PostgreSQL's log here; skipped (count them in src/orders/mod.rs::checkout instead)"
else
  qa "ALTER DATABASE $db SET log_min_duration_statement = 0"
  start_server 1
  token=$(head -n 1 "$work/tokens")
  product=$(head -n 1 "$work/products")
  checkout() {
    curl -sf -o /dev/null --max-time 10 "$url/api/v1/checkouts" -H "authorization: Bearer $token" \
      -H 'content-type: application/json' -H "idempotency-key: rtt-$$-$1" \
      -d "{\"lines\":[{\"product_id\":\"$product\",\"quantity\":1}],\"delivery\":{\"method\":\"pickup\"}}"
  }
  checkout warm # the connection prepares its statements once; count the steady state
  sleep 0.5
  lines_before=$(wc -l <"$logfile")
  checkout measured
  sleep 0.5
  stop_server
  qa "ALTER DATABASE $db RESET log_min_duration_statement"
  tail -n +"$((lines_before + 1))" "$logfile" | grep -E 'duration: .* (statement:|parse|execute|bind) ' \
    | sed -E 's/.*duration: [0-9.]+ ms  //' >"$work/rtt"
  parses=$(grep -c '^parse ' "$work/rtt" || true)
  executes=$(grep -c '^execute ' "$work/rtt" || true)
  simple=$(grep -c '^statement: ' "$work/rtt" || true)
  echo "round trips: $((parses + executes + simple)) = $executes prepared executions + $parses parses (statements not cached) + $simple simple queries (BEGIN/COMMIT/SAVEPOINT ...)"
  grep -E '^(parse|statement:|execute)' "$work/rtt" | cut -c1-110 | sed 's/^/  /'
fi
