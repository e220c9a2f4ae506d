DROP TABLE order_aid;
ALTER TABLE orders DROP CONSTRAINT orders_aid_paid;
ALTER TABLE orders DROP COLUMN aid_paid_idr;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN (
    'topup', 'withdrawal', 'hold', 'settlement', 'refund'));
DROP TRIGGER accounts_for_programme ON aid_programmes;
DROP FUNCTION accounts_for_programme();
DROP INDEX accounts_aid_holder_idx;
DROP INDEX accounts_aid_balance_key;
DROP INDEX accounts_aid_programme_key;
ALTER TABLE accounts DROP CONSTRAINT accounts_owner;
ALTER TABLE accounts ADD CONSTRAINT accounts_owner CHECK (
    (kind = 'user_wallet') = (user_id IS NOT NULL)
    AND (kind = 'shop_wallet') = (shop_id IS NOT NULL)
    AND (kind = 'network_fee') = (network_id IS NOT NULL)
    AND (kind IN ('network_fee', 'platform_fee')) = (village_code IS NULL));
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (kind IN (
    'user_wallet', 'shop_wallet', 'escrow', 'village_revenue', 'network_fee', 'platform_fee', 'cash'));
ALTER TABLE accounts DROP COLUMN programme_id;
CREATE OR REPLACE FUNCTION accounts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'accounts are never deleted';
    END IF;
    IF (NEW.balance_idr, NEW.entry_count) IS DISTINCT FROM (OLD.balance_idr, OLD.entry_count)
       AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'balances change only through postings';
    END IF;
    IF (NEW.kind, NEW.village_code, NEW.user_id, NEW.shop_id, NEW.network_id)
       IS DISTINCT FROM (OLD.kind, OLD.village_code, OLD.user_id, OLD.shop_id, OLD.network_id) THEN
        RAISE EXCEPTION 'an account keeps its owner';
    END IF;
    RETURN NEW;
END $$;
DROP TABLE aid_programmes;
