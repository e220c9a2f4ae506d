#!/usr/bin/env bash
# Reports benchmark (prints figures, asserts nothing).
#
# Creates the database pasar_bench_reports on DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), applies the migrations with psql, and writes a
# year of history with SQL generate_series: 6 villages (the five Pasardesa villages as one
# network, and Gambir in Jakarta outside it), BENCH_USERS members, 50 active shops with one
# product each per village, a top-up per member, then BENCH_ORDERS completed orders spread over
# the year, each with its line, its hold and its settlement (buyer wallet -> escrow -> shop
# wallet + 2 % PADes) — all through the real ledger and the reports trigger, one day per
# transaction, with each row's timestamp in the past. Then ANALYZE, the ledger check, and the
# report queries (exactly those src/reports runs) timed with psql's \timing: the dashboard of
# Panggungharjo and the circulation of the network, over the year (month buckets) and one month
# (day buckets), BENCH_RUNS times each; the sum of a report's statements per run.
#
# Knobs: BENCH_ORDERS (1000000), BENCH_USERS (10000), BENCH_RUNS (5), BENCH_KEEP_DB=1.
set -euo pipefail
cd "$(dirname "$0")/.."

orders=${BENCH_ORDERS:-1000000}
users=${BENCH_USERS:-10000}
runs=${BENCH_RUNS:-5}
admin_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=pasar_bench_reports
bench_url="${admin_url%/*}/$db"
year_start=2025-01-01

qa() { psql -v ON_ERROR_STOP=1 -qAtX "$admin_url" -c "$1"; }
qb() { psql -v ON_ERROR_STOP=1 -qAtX "$bench_url" "$@"; }
cleanup() {
  if [ "${BENCH_KEEP_DB:-0}" != 1 ]; then
    qa "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

echo "== machine"
echo "nproc: $(nproc); $(free -h | awk '/^Mem/ {print $2 " RAM"}')"
echo "PostgreSQL $(qa 'SHOW server_version') (fsync=$(qa 'SHOW fsync'), shared_buffers=$(qa 'SHOW shared_buffers'))"

qa "DROP DATABASE IF EXISTS $db WITH (FORCE)"
qa "CREATE DATABASE $db"
for m in migrations/*/; do
  qb -1 -f "$m/up.sql" >/dev/null
done

echo "== population: $users members, 300 shops, 6 villages"
start=$(date +%s)
qb <<SQL
-- Just the regions the villages need, with their parents (the real table is not needed).
INSERT INTO regions (code, parent_code, level, kind, name) VALUES
  ('34', NULL, 1, 'provinsi', 'Daerah Istimewa Yogyakarta'), ('31', NULL, 1, 'provinsi', 'DKI Jakarta'),
  ('34.02', '34', 2, 'kabupaten', 'Kabupaten Bantul'), ('31.71', '31', 2, 'kota', 'Kota Jakarta Pusat'),
  ('34.02.15', '34.02', 3, 'kecamatan', 'Sewon'), ('34.02.07', '34.02', 3, 'kecamatan', 'Pajangan'),
  ('34.02.10', '34.02', 3, 'kecamatan', 'Imogiri'), ('34.02.12', '34.02', 3, 'kecamatan', 'Banguntapan'),
  ('34.02.16', '34.02', 3, 'kecamatan', 'Kasihan'), ('31.71.01', '31.71', 3, 'kecamatan', 'Gambir'),
  ('34.02.15.2004', '34.02.15', 4, 'desa', 'Panggungharjo'), ('34.02.07.2003', '34.02.07', 4, 'desa', 'Guwosari'),
  ('34.02.10.2002', '34.02.10', 4, 'desa', 'Sriharjo'), ('34.02.12.2008', '34.02.12', 4, 'desa', 'Wirokerten'),
  ('34.02.16.2004', '34.02.16', 4, 'desa', 'Ngestiharjo'), ('31.71.01.1001', '31.71.01', 4, 'kelurahan', 'Gambir');
CREATE TABLE bench_villages (n int PRIMARY KEY, code text);
INSERT INTO bench_villages VALUES (0, '34.02.15.2004'), (1, '34.02.07.2003'), (2, '34.02.10.2002'),
  (3, '34.02.12.2008'), (4, '34.02.16.2004'), (5, '31.71.01.1001');
INSERT INTO villages (code, name, village_share_bps) SELECT v.code, r.name, 200 FROM bench_villages v JOIN regions r USING (code);
WITH n AS (INSERT INTO networks (id, name) VALUES (uuid_v7(), 'Pasardesa') RETURNING id)
INSERT INTO network_villages (network_id, village_code) SELECT n.id, v.code FROM n, bench_villages v WHERE v.n < 5;
CREATE TABLE bench_users (n int PRIMARY KEY, user_id uuid, village_code text, wallet_id uuid);
INSERT INTO bench_users (n, user_id, village_code)
  SELECT g, uuid_v7(), (SELECT code FROM bench_villages WHERE n = g % 6) FROM generate_series(0, $users - 1) g;
INSERT INTO users (id, phone, name, password_hash)
  SELECT user_id, '+62899' || lpad(n::text, 8, '0'), 'Warga ' || n, 'x' FROM bench_users;
INSERT INTO memberships (user_id, village_code, roles) SELECT user_id, village_code, ARRAY['member'] FROM bench_users;
UPDATE bench_users b SET wallet_id = a.id FROM accounts a WHERE a.kind = 'user_wallet' AND a.user_id = b.user_id;
CREATE TABLE bench_shops (n int PRIMARY KEY, shop_id uuid, village_code text, product_id uuid, price bigint,
                          wallet_id uuid, escrow_id uuid, revenue_id uuid);
INSERT INTO bench_shops (n, shop_id, village_code, product_id, price)
  SELECT g, uuid_v7(), (SELECT code FROM bench_villages WHERE n = g % 6), uuid_v7(), 5000 + (g * 7919) % 45000
    FROM generate_series(0, 299) g;
INSERT INTO shops (id, village_code, name, kind, status, created_by)
  SELECT s.shop_id, s.village_code, 'Lapak ' || s.n, 'umkm', 'active',
         (SELECT user_id FROM bench_users u WHERE u.village_code = s.village_code ORDER BY n LIMIT 1)
    FROM bench_shops s;
INSERT INTO products (id, shop_id, village_code, name, category, unit, price_idr, final_price_idr, stock, status, published_at)
  SELECT product_id, shop_id, village_code, 'Produk ' || n, (SELECT slug FROM categories ORDER BY slug LIMIT 1), 'pcs',
         price, price, 1000000, 'active', '$year_start'
    FROM bench_shops;
UPDATE bench_shops s SET wallet_id = w.id, escrow_id = e.id, revenue_id = r.id
  FROM accounts w, accounts e, accounts r
 WHERE w.kind = 'shop_wallet' AND w.shop_id = s.shop_id
   AND e.kind = 'escrow' AND e.village_code = s.village_code
   AND r.kind = 'village_revenue' AND r.village_code = s.village_code;
-- A top-up per member on the first day (cash -> wallet), enough for a year of shopping.
CREATE TABLE bench_topups AS SELECT u.*, uuid_v7() AS tx, a.id AS cash_id FROM bench_users u
  JOIN accounts a ON a.kind = 'cash' AND a.village_code = u.village_code;
INSERT INTO ledger_transactions (id, kind, created_at) SELECT tx, 'topup', '$year_start 08:00+07' FROM bench_topups;
INSERT INTO postings (id, transaction_id, account_id, amount_idr, created_at)
  SELECT uuid_v7(), tx, acc, amt, '$year_start 08:00+07'
    FROM bench_topups, LATERAL (VALUES (wallet_id, 1000000000::bigint), (cash_id, -1000000000::bigint)) v(acc, amt);
SQL
echo "population: $(( $(date +%s) - start )) s"

echo "== $orders completed orders over 365 days (one transaction per day)"
start=$(date +%s)
qb <<SQL
DO \$\$
DECLARE
  d int;
  per_day int := ceil($orders / 365.0);
  left_over int := $orders;
  n int;
BEGIN
  FOR d IN 0..364 LOOP
    n := least(per_day, left_over);
    left_over := left_over - n;
    CREATE TEMP TABLE day_orders ON COMMIT DROP AS
      SELECT uuid_v7() AS id, uuid_v7() AS hold_tx, uuid_v7() AS settle_tx, u.user_id, u.wallet_id AS buyer_wallet,
             u.village_code AS buyer_village, s.*, s.price AS total,
             s.price * 200 / 10000 AS share,
             '$year_start'::timestamptz + make_interval(days => d, secs => (g * 37) % 50000) AS at
        FROM generate_series(1, n) g
        JOIN bench_users u ON u.n = (g * 7 + d * 131) % $users
        JOIN bench_shops s ON s.n = (g * 13 + d * 17) % 300;
    INSERT INTO orders (id, checkout_id, status, buyer_user_id, buyer_account_id, buyer_village_code, shop_id,
                        village_code, escrow_account_id, network_fee_bps, village_share_bps, platform_fee_bps,
                        delivery_method, delivery_fee_idr, items_total_idr, total_idr, placed_at, updated_at)
      SELECT id, id, 'completed', user_id, buyer_wallet, buyer_village, shop_id, village_code, escrow_id, 0, 200, 0,
             'pickup', 0, total, total, at, at + interval '2 hours' FROM day_orders;
    INSERT INTO order_lines (order_id, line_no, product_id, name, unit, unit_price_idr, quantity, line_total_idr)
      SELECT id, 1, product_id, 'Produk', 'pcs', price, 1, price FROM day_orders;
    INSERT INTO ledger_transactions (id, kind, order_id, created_at)
      SELECT hold_tx, 'hold', id, at FROM day_orders
      UNION ALL SELECT settle_tx, 'settlement', id, at + interval '2 hours' FROM day_orders;
    INSERT INTO postings (id, transaction_id, account_id, amount_idr, created_at)
      SELECT uuid_v7(), hold_tx, acc, amt, at FROM day_orders,
             LATERAL (VALUES (buyer_wallet, -total), (escrow_id, total)) v(acc, amt);
    INSERT INTO postings (id, transaction_id, account_id, amount_idr, created_at)
      SELECT uuid_v7(), settle_tx, acc, amt, at + interval '2 hours' FROM day_orders,
             LATERAL (VALUES (escrow_id, -total), (wallet_id, total - share), (revenue_id, share)) v(acc, amt)
       WHERE amt <> 0;
    COMMIT;
  END LOOP;
END \$\$;
SQL
echo "orders: $(( $(date +%s) - start )) s"
qb -c "VACUUM ANALYZE"
qb -c "SELECT 'rows: orders ' || (SELECT count(*) FROM orders) || ', postings ' || (SELECT count(*) FROM postings)
              || ', report_trade_daily ' || (SELECT count(*) FROM report_trade_daily)
              || ', report_spend_daily ' || (SELECT count(*) FROM report_spend_daily)
              || ', report_holder_daily ' || (SELECT count(*) FROM report_holder_daily)
              || ', report_product_daily ' || (SELECT count(*) FROM report_product_daily)"
qb -c "SELECT 'ledger: ' || count(*) FILTER (WHERE s <> 0) || ' unbalanced transactions'
         FROM (SELECT sum(amount_idr) s FROM postings GROUP BY transaction_id) t"
qb -c "SELECT 'rollup check: GMV ' || (SELECT sum(total_idr) FROM orders WHERE status = 'completed')
              || ' = ' || (SELECT sum(gmv_idr) FROM report_trade_daily)"

village=34.02.15.2004
network=$(qb -c "SELECT id FROM networks LIMIT 1")
members="ARRAY(SELECT village_code FROM network_villages WHERE network_id = '$network')"

dashboard_sql() { # from to
  cat <<SQL
SELECT r.village_code, v.name, r.orders, r.amount_idr FROM (SELECT buyer_village AS village_code, sum(orders)::bigint AS orders, sum(gmv_idr)::bigint AS amount_idr FROM report_trade_daily WHERE seller_village = '$village' AND day BETWEEN '$1' AND '$2' GROUP BY 1) r LEFT JOIN villages v ON v.code = r.village_code ORDER BY r.amount_idr DESC, r.village_code;
SELECT r.village_code, v.name, r.orders, r.amount_idr FROM (SELECT seller_village AS village_code, sum(orders)::bigint AS orders, sum(gmv_idr)::bigint AS amount_idr FROM report_trade_daily WHERE buyer_village = '$village' AND day BETWEEN '$1' AND '$2' GROUP BY 1) r LEFT JOIN villages v ON v.code = r.village_code ORDER BY r.amount_idr DESC, r.village_code;
SELECT status, count(*) FROM orders WHERE village_code = '$village' AND placed_at >= '$1 00:00+07' AND placed_at < '$2 00:00+07'::timestamptz + interval '1 day' GROUP BY status;
SELECT r.product_id, p.name, r.quantity, r.revenue_idr FROM (SELECT product_id, sum(quantity)::bigint AS quantity, sum(revenue_idr)::bigint AS revenue_idr FROM report_product_daily WHERE village_code = '$village' AND day BETWEEN '$1' AND '$2' GROUP BY product_id ORDER BY 3 DESC, 1 LIMIT 10) r JOIN products p ON p.id = r.product_id ORDER BY r.revenue_idr DESC, r.product_id;
SELECT (SELECT count(*) FROM shops WHERE village_code = '$village' AND status = 'active'), COALESCE((SELECT sum(credit_idr) FROM report_ledger_daily WHERE village_code = '$village' AND day BETWEEN '$1' AND '$2' AND account_kind = 'village_revenue'), 0), COALESCE((SELECT sum(debit_idr) FROM report_ledger_daily WHERE village_code = '$village' AND day BETWEEN '$1' AND '$2' AND account_kind = 'aid_programme' AND tx_kind = 'aid_disbursement'), 0), count(*) FILTER (WHERE kind = 'user_wallet'), COALESCE(sum(balance_idr) FILTER (WHERE kind = 'user_wallet'), 0), count(*) FILTER (WHERE kind = 'shop_wallet'), COALESCE(sum(balance_idr) FILTER (WHERE kind = 'shop_wallet'), 0) FROM accounts WHERE village_code = '$village' AND kind IN ('user_wallet', 'shop_wallet');
SELECT r.seller_village, v.name, r.amount_idr FROM (SELECT seller_village, sum(amount_idr)::bigint AS amount_idr FROM report_aid_spent_daily WHERE programme_village = '$village' AND day BETWEEN '$1' AND '$2' GROUP BY 1) r LEFT JOIN villages v ON v.code = r.seller_village;
SELECT r.shop_id, s.name, r.amount_idr FROM (SELECT shop_id, sum(amount_idr)::bigint AS amount_idr FROM report_aid_spent_daily WHERE programme_village = '$village' AND day BETWEEN '$1' AND '$2' GROUP BY 1) r JOIN shops s ON s.id = r.shop_id;
SQL
}

circulation_sql() { # from to granularity
  local b="date_trunc('$3', day::timestamp)::date"
  cat <<SQL
SELECT $b, buyer_village, seller_village, sum(orders)::bigint, sum(gmv_idr)::bigint FROM report_trade_daily WHERE (buyer_village = ANY($members) OR seller_village = ANY($members)) AND day BETWEEN '$1' AND '$2' GROUP BY 1, 2, 3;
SELECT $b, account_kind, tx_kind, sum(credit_idr)::bigint, sum(debit_idr)::bigint FROM report_ledger_daily WHERE village_code = ANY($members) AND day BETWEEN '$1' AND '$2' AND tx_kind IN ('topup', 'withdrawal', 'aid_funding') GROUP BY 1, 2, 3;
SELECT $b, holder_id, sum(topup_idr + aid_idr)::bigint, sum(topup_idr + aid_idr + settlement_idr + other_idr)::bigint FROM report_holder_daily WHERE village_code = ANY($members) AND day BETWEEN '$1' AND '$2' GROUP BY 1, 2;
SELECT $b, buyer_id, shop_id, buyer_village = ANY($members), sum(spend_idr)::bigint, sum(net_idr)::bigint FROM report_spend_daily WHERE seller_village = ANY($members) AND day BETWEEN '$1' AND '$2' GROUP BY 1, 2, 3, 4;
SQL
}

# Runs a report's statements $runs times; prints each run's total of psql's \timing (ms).
time_report() { # label sql
  local label=$1 sql=$2 totals=()
  for _ in $(seq "$runs"); do
    totals+=("$( { echo '\timing on'; echo "$sql"; } | qb -o /dev/null 2>&1 \
      | awk '/^Time:/ {s += $2} END {printf "%.1f", s}')")
  done
  printf '%-58s %s ms\n' "$label" "${totals[*]}"
}

echo "== report queries, ms per run ($runs runs)"
time_report "dashboard, year 2025" "$(dashboard_sql 2025-01-01 2025-12-31)"
time_report "dashboard, June 2025" "$(dashboard_sql 2025-06-01 2025-06-30)"
time_report "circulation, year 2025, month buckets" "$(circulation_sql 2025-01-01 2025-12-31 month)"
time_report "circulation, June 2025, day buckets" "$(circulation_sql 2025-06-01 2025-06-30 day)"
