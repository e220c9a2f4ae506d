-- Reports: daily rollups of completed trade and of money entering and leaving wallets, kept by
-- one statement-level trigger on `postings` in the same transaction as the ledger change (the
-- orders and ledger code know nothing of reports).
--
-- * Days are WIB (Asia/Jakarta) dates of the posting rows' own `created_at`, never now(): the
--   demo seed writes backdated history through the same tables.
-- * An order counts as completed on the day of its settlement; a settlement always debits the
--   escrow (the total is > 0), while the seller's credit is absent when fees take 100 %.
-- * Holds (the checkout path) and refunds are never rolled up, so a checkout touches no rollup
--   row: rows per (day, village) are upserted only on completion and treasurer paths, which
--   already lock their village's escrow or cash account.
-- * Each statement's postings are aggregated before the upsert (one row per key), in key order,
--   so bulk inserts work and concurrent writers lock rollup rows in one order.

-- Completed orders per (seller village, WIB day, buyer village): the dashboard's sales and
-- purchases, the network's spend by distance, flow matrix and sales to outside buyers.
CREATE TABLE report_trade_daily (
    seller_village TEXT NOT NULL,
    day            DATE NOT NULL,
    buyer_village  TEXT NOT NULL,
    orders         BIGINT NOT NULL,
    -- Sum of total_idr (lines + delivery).
    gmv_idr        BIGINT NOT NULL,
    -- Sum of aid_paid_idr.
    aid_idr        BIGINT NOT NULL,
    -- What the sellers' wallets were credited (total minus fees).
    seller_net_idr BIGINT NOT NULL,
    PRIMARY KEY (seller_village, day, buyer_village)
);
CREATE INDEX report_trade_daily_buyer_idx ON report_trade_daily (buyer_village, day);

-- Completed order lines per (seller village, day, product): top products.
CREATE TABLE report_product_daily (
    village_code TEXT NOT NULL,
    day          DATE NOT NULL,
    product_id   UUID NOT NULL,
    quantity     BIGINT NOT NULL,
    -- Sum of line_total_idr (delivery fees are not a product's).
    revenue_idr  BIGINT NOT NULL,
    PRIMARY KEY (village_code, day, product_id)
);

-- Credits and debits per (owning village, day, account kind, transaction kind) of the accounts
-- reports read: user and shop wallets, aid balances, aid programmes, village revenue. Holds and
-- refunds are left out (see above).
CREATE TABLE report_ledger_daily (
    village_code TEXT NOT NULL,
    day          DATE NOT NULL,
    account_kind TEXT NOT NULL,
    tx_kind      TEXT NOT NULL,
    credit_idr   BIGINT NOT NULL,
    debit_idr    BIGINT NOT NULL,
    PRIMARY KEY (village_code, day, account_kind, tx_kind)
);

-- Aid spent in completed orders (order_aid) per (programme, day, seller shop).
CREATE TABLE report_aid_spent_daily (
    programme_id      UUID NOT NULL,
    day               DATE NOT NULL,
    shop_id           UUID NOT NULL,
    programme_village TEXT NOT NULL,
    seller_village    TEXT NOT NULL,
    amount_idr        BIGINT NOT NULL,
    PRIMARY KEY (programme_id, day, shop_id)
);
CREATE INDEX report_aid_spent_daily_village_idx ON report_aid_spent_daily (programme_village, day);

-- Money received per holder (a user: wallet and aid balances; a shop: its wallet), per
-- (account village, day): LM3's inflows. Refunds are not income.
CREATE TABLE report_holder_daily (
    village_code   TEXT NOT NULL,
    day            DATE NOT NULL,
    -- users.id or shops.id.
    holder_id      UUID NOT NULL,
    topup_idr      BIGINT NOT NULL,
    aid_idr        BIGINT NOT NULL,
    settlement_idr BIGINT NOT NULL,
    other_idr      BIGINT NOT NULL,
    PRIMARY KEY (village_code, day, holder_id)
);

-- Completed orders per (seller village, day, buyer holder, seller shop): who spent where, for
-- LM3's re-spend rounds.
CREATE TABLE report_spend_daily (
    seller_village TEXT NOT NULL,
    day            DATE NOT NULL,
    -- The buying shop, or the buying user.
    buyer_id       UUID NOT NULL,
    shop_id        UUID NOT NULL,
    buyer_village  TEXT NOT NULL,
    spend_idr      BIGINT NOT NULL,
    net_idr        BIGINT NOT NULL,
    PRIMARY KEY (seller_village, day, buyer_id, shop_id)
);
CREATE INDEX report_spend_daily_buyer_idx ON report_spend_daily (buyer_id, day);

-- Orders placed in a period by status, read straight from orders (a counter would be a hot row
-- on the checkout path); index-only with the status included.
CREATE INDEX orders_village_placed_idx ON orders (village_code, placed_at) INCLUDE (status);

CREATE FUNCTION report_postings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The checkout path (holds only) leaves after one probe.
    PERFORM 1 FROM new_postings p JOIN ledger_transactions t ON t.id = p.transaction_id
      WHERE t.kind NOT IN ('hold', 'refund') LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    INSERT INTO report_ledger_daily AS r (village_code, day, account_kind, tx_kind, credit_idr, debit_idr)
    SELECT a.village_code, (p.created_at AT TIME ZONE 'Asia/Jakarta')::date, a.kind, t.kind,
           COALESCE(sum(p.amount_idr) FILTER (WHERE p.amount_idr > 0), 0),
           COALESCE(-sum(p.amount_idr) FILTER (WHERE p.amount_idr < 0), 0)
      FROM new_postings p
      JOIN ledger_transactions t ON t.id = p.transaction_id
      JOIN accounts a ON a.id = p.account_id
     WHERE t.kind NOT IN ('hold', 'refund')
       AND a.kind IN ('user_wallet', 'shop_wallet', 'aid_balance', 'aid_programme', 'village_revenue')
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (village_code, day, account_kind, tx_kind) DO UPDATE
       SET credit_idr = r.credit_idr + EXCLUDED.credit_idr, debit_idr = r.debit_idr + EXCLUDED.debit_idr;

    INSERT INTO report_holder_daily AS r (village_code, day, holder_id, topup_idr, aid_idr, settlement_idr, other_idr)
    SELECT a.village_code, (p.created_at AT TIME ZONE 'Asia/Jakarta')::date, COALESCE(a.shop_id, a.user_id),
           COALESCE(sum(p.amount_idr) FILTER (WHERE t.kind = 'topup'), 0),
           COALESCE(sum(p.amount_idr) FILTER (WHERE t.kind = 'aid_disbursement'), 0),
           COALESCE(sum(p.amount_idr) FILTER (WHERE t.kind = 'settlement'), 0),
           COALESCE(sum(p.amount_idr) FILTER (WHERE t.kind NOT IN ('topup', 'aid_disbursement', 'settlement')), 0)
      FROM new_postings p
      JOIN ledger_transactions t ON t.id = p.transaction_id
      JOIN accounts a ON a.id = p.account_id
     WHERE t.kind NOT IN ('hold', 'refund') AND p.amount_idr > 0
       AND a.kind IN ('user_wallet', 'shop_wallet', 'aid_balance')
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (village_code, day, holder_id) DO UPDATE
       SET topup_idr = r.topup_idr + EXCLUDED.topup_idr, aid_idr = r.aid_idr + EXCLUDED.aid_idr,
           settlement_idr = r.settlement_idr + EXCLUDED.settlement_idr, other_idr = r.other_idr + EXCLUDED.other_idr;

    PERFORM 1 FROM new_postings p JOIN ledger_transactions t ON t.id = p.transaction_id
      WHERE t.kind = 'settlement' LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    -- Below, `settled` is the orders settled by this statement: the day of the settlement and
    -- the seller's net credit (0 when fees took everything).
    WITH settled AS (
        SELECT t.order_id, (min(p.created_at) AT TIME ZONE 'Asia/Jakarta')::date AS day,
               COALESCE(sum(p.amount_idr) FILTER (WHERE a.kind = 'shop_wallet'), 0) AS net_idr
          FROM new_postings p
          JOIN ledger_transactions t ON t.id = p.transaction_id
          JOIN accounts a ON a.id = p.account_id
         WHERE t.kind = 'settlement'
         GROUP BY t.order_id)
    INSERT INTO report_trade_daily AS r (seller_village, day, buyer_village, orders, gmv_idr, aid_idr, seller_net_idr)
    SELECT o.village_code, s.day, o.buyer_village_code, count(*), sum(o.total_idr), sum(o.aid_paid_idr), sum(s.net_idr)
      FROM settled s JOIN orders o ON o.id = s.order_id
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (seller_village, day, buyer_village) DO UPDATE
       SET orders = r.orders + EXCLUDED.orders, gmv_idr = r.gmv_idr + EXCLUDED.gmv_idr,
           aid_idr = r.aid_idr + EXCLUDED.aid_idr, seller_net_idr = r.seller_net_idr + EXCLUDED.seller_net_idr;

    WITH settled AS (
        SELECT t.order_id, (min(p.created_at) AT TIME ZONE 'Asia/Jakarta')::date AS day,
               COALESCE(sum(p.amount_idr) FILTER (WHERE a.kind = 'shop_wallet'), 0) AS net_idr
          FROM new_postings p
          JOIN ledger_transactions t ON t.id = p.transaction_id
          JOIN accounts a ON a.id = p.account_id
         WHERE t.kind = 'settlement'
         GROUP BY t.order_id)
    INSERT INTO report_spend_daily AS r (seller_village, day, buyer_id, shop_id, buyer_village, spend_idr, net_idr)
    SELECT o.village_code, s.day, COALESCE(o.buyer_shop_id, o.buyer_user_id), o.shop_id,
           min(o.buyer_village_code), sum(o.total_idr), sum(s.net_idr)
      FROM settled s JOIN orders o ON o.id = s.order_id
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (seller_village, day, buyer_id, shop_id) DO UPDATE
       SET spend_idr = r.spend_idr + EXCLUDED.spend_idr, net_idr = r.net_idr + EXCLUDED.net_idr;

    WITH settled AS (
        SELECT t.order_id, (min(p.created_at) AT TIME ZONE 'Asia/Jakarta')::date AS day,
               COALESCE(sum(p.amount_idr) FILTER (WHERE a.kind = 'shop_wallet'), 0) AS net_idr
          FROM new_postings p
          JOIN ledger_transactions t ON t.id = p.transaction_id
          JOIN accounts a ON a.id = p.account_id
         WHERE t.kind = 'settlement'
         GROUP BY t.order_id)
    INSERT INTO report_product_daily AS r (village_code, day, product_id, quantity, revenue_idr)
    SELECT o.village_code, s.day, l.product_id, sum(l.quantity), sum(l.line_total_idr)
      FROM settled s JOIN orders o ON o.id = s.order_id JOIN order_lines l ON l.order_id = o.id
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (village_code, day, product_id) DO UPDATE
       SET quantity = r.quantity + EXCLUDED.quantity, revenue_idr = r.revenue_idr + EXCLUDED.revenue_idr;

    WITH settled AS (
        SELECT t.order_id, (min(p.created_at) AT TIME ZONE 'Asia/Jakarta')::date AS day,
               COALESCE(sum(p.amount_idr) FILTER (WHERE a.kind = 'shop_wallet'), 0) AS net_idr
          FROM new_postings p
          JOIN ledger_transactions t ON t.id = p.transaction_id
          JOIN accounts a ON a.id = p.account_id
         WHERE t.kind = 'settlement'
         GROUP BY t.order_id)
    INSERT INTO report_aid_spent_daily AS r (programme_id, day, shop_id, programme_village, seller_village, amount_idr)
    SELECT oa.programme_id, s.day, o.shop_id, min(ap.village_code), min(o.village_code), sum(oa.amount_idr)
      FROM settled s
      JOIN orders o ON o.id = s.order_id
      JOIN order_aid oa ON oa.order_id = o.id
      JOIN aid_programmes ap ON ap.id = oa.programme_id
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (programme_id, day, shop_id) DO UPDATE SET amount_idr = r.amount_idr + EXCLUDED.amount_idr;
    RETURN NULL;
END $$;
CREATE TRIGGER report_postings AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION report_postings();
