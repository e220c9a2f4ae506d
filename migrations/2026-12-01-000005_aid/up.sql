-- Aid programmes (bantuan, e.g. BLT Dana Desa): money a village pays its residents as balance
-- that can be spent only in the programme's area (the village's shops, or its network's).
--
-- All of it is in the one ledger: a programme has an account (cash -> programme when the
-- treasurer funds it), each recipient an aid balance per programme (programme -> aid balance
-- when disbursed). A checkout spends aid balances before the wallet for orders from shops in
-- the area (`order_aid` says how much came from which balance, so a refund goes back there);
-- when the period ends what is unspent returns to the programme, once (`closed_at`).
CREATE TABLE aid_programmes (
    id           UUID PRIMARY KEY,
    -- The village that runs (and funds) it; its treasurers fund and disburse.
    village_code TEXT NOT NULL REFERENCES villages (code),
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('blt_dana_desa', 'producer_subsidy', 'social_assistance', 'other')),
    -- Where it may be spent: the village's shops, or the shops of every village of `network_id`.
    scope        TEXT NOT NULL CHECK (scope IN ('village', 'network')),
    network_id   UUID REFERENCES networks (id),
    -- Inclusive, in WIB (Asia/Jakarta): spendable from the first day through the last.
    starts_on    DATE NOT NULL,
    ends_on      DATE NOT NULL,
    created_by   UUID NOT NULL REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set once, when the unspent remainder went back to the programme.
    closed_at    TIMESTAMPTZ,
    CHECK (ends_on >= starts_on),
    CHECK ((scope = 'network') = (network_id IS NOT NULL))
);
CREATE INDEX aid_programmes_village_idx ON aid_programmes (village_code, id DESC);
CREATE INDEX aid_programmes_open_idx ON aid_programmes (ends_on) WHERE closed_at IS NULL;

ALTER TABLE accounts ADD COLUMN programme_id UUID REFERENCES aid_programmes (id);
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (kind IN (
    'user_wallet', 'shop_wallet', 'escrow', 'village_revenue', 'network_fee', 'platform_fee', 'cash',
    'aid_programme', 'aid_balance'));
ALTER TABLE accounts DROP CONSTRAINT accounts_owner;
ALTER TABLE accounts ADD CONSTRAINT accounts_owner CHECK (
    (kind IN ('user_wallet', 'aid_balance')) = (user_id IS NOT NULL)
    AND (kind = 'shop_wallet') = (shop_id IS NOT NULL)
    AND (kind = 'network_fee') = (network_id IS NOT NULL)
    AND (kind IN ('aid_programme', 'aid_balance')) = (programme_id IS NOT NULL)
    AND (kind IN ('network_fee', 'platform_fee')) = (village_code IS NULL));
CREATE UNIQUE INDEX accounts_aid_programme_key ON accounts (programme_id) WHERE kind = 'aid_programme';
CREATE UNIQUE INDEX accounts_aid_balance_key ON accounts (programme_id, user_id) WHERE kind = 'aid_balance';
CREATE INDEX accounts_aid_holder_idx ON accounts (user_id) WHERE kind = 'aid_balance';

CREATE OR REPLACE FUNCTION accounts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'accounts are never deleted';
    END IF;
    IF (NEW.balance_idr, NEW.entry_count) IS DISTINCT FROM (OLD.balance_idr, OLD.entry_count)
       AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'balances change only through postings';
    END IF;
    IF (NEW.kind, NEW.village_code, NEW.user_id, NEW.shop_id, NEW.network_id, NEW.programme_id)
       IS DISTINCT FROM (OLD.kind, OLD.village_code, OLD.user_id, OLD.shop_id, OLD.network_id, OLD.programme_id) THEN
        RAISE EXCEPTION 'an account keeps its owner';
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION accounts_for_programme() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO accounts (kind, village_code, programme_id) VALUES ('aid_programme', NEW.village_code, NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_for_programme AFTER INSERT ON aid_programmes
    FOR EACH ROW EXECUTE FUNCTION accounts_for_programme();

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN (
    'topup', 'withdrawal', 'hold', 'settlement', 'refund', 'aid_funding', 'aid_disbursement', 'aid_return'));

-- How much of an order's total was paid from aid (the rest from the buyer's wallet).
ALTER TABLE orders ADD COLUMN aid_paid_idr BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD CONSTRAINT orders_aid_paid CHECK (aid_paid_idr BETWEEN 0 AND total_idr);

-- Which aid balances paid for an order: a refund returns each part to where it came from.
CREATE TABLE order_aid (
    order_id     UUID NOT NULL REFERENCES orders (id),
    programme_id UUID NOT NULL REFERENCES aid_programmes (id),
    account_id   UUID NOT NULL REFERENCES accounts (id),
    amount_idr   BIGINT NOT NULL CHECK (amount_idr > 0),
    PRIMARY KEY (order_id, programme_id)
);
CREATE INDEX order_aid_programme_idx ON order_aid (programme_id);
CREATE TRIGGER order_aid_append_only BEFORE UPDATE OR DELETE ON order_aid
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER order_aid_no_truncate BEFORE TRUNCATE ON order_aid
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
