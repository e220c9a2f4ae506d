-- Money: accounts, an append-only double-entry ledger, and orders with their lines and events.
--
-- The database itself keeps the ledger honest, whatever the code does:
-- * a posting updates its account's balance in the same statement (trigger), so every balance
--   equals the sum of its postings by construction, and balances change no other way;
-- * no account but `cash` (money outside the system) may go below zero (a CHECK);
-- * every ledger transaction's postings sum to zero (a deferred constraint trigger, at commit);
-- * postings, ledger transactions, order events and the audit log refuse UPDATE and DELETE.

-- UUIDv7 (time-ordered) for rows the database creates itself (PostgreSQL 15 has no uuidv7()).
CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

CREATE TABLE accounts (
    id           UUID PRIMARY KEY DEFAULT uuid_v7(),
    kind         TEXT NOT NULL CHECK (kind IN ('user_wallet', 'shop_wallet', 'escrow', 'village_revenue',
                                               'network_fee', 'platform_fee', 'cash')),
    -- The owning village: a user wallet's home village, a shop's village, the village of an
    -- escrow, revenue or cash account. NULL for network and platform fee accounts.
    village_code TEXT REFERENCES villages (code),
    user_id      UUID REFERENCES users (id),
    shop_id      UUID REFERENCES shops (id),
    network_id   UUID REFERENCES networks (id),
    balance_idr  BIGINT NOT NULL DEFAULT 0,
    -- Postings so far: each posting gets the next number, so a statement's order (and its
    -- running balance) is the order in which the balance changed.
    entry_count  BIGINT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT accounts_no_overdraft CHECK (kind = 'cash' OR balance_idr >= 0),
    CONSTRAINT accounts_owner CHECK (
        (kind = 'user_wallet') = (user_id IS NOT NULL)
        AND (kind = 'shop_wallet') = (shop_id IS NOT NULL)
        AND (kind = 'network_fee') = (network_id IS NOT NULL)
        AND (kind IN ('network_fee', 'platform_fee')) = (village_code IS NULL))
);
CREATE UNIQUE INDEX accounts_user_wallet_key ON accounts (user_id) WHERE kind = 'user_wallet';
CREATE UNIQUE INDEX accounts_shop_wallet_key ON accounts (shop_id) WHERE kind = 'shop_wallet';
CREATE UNIQUE INDEX accounts_village_key ON accounts (kind, village_code)
    WHERE kind IN ('escrow', 'village_revenue', 'cash');
CREATE UNIQUE INDEX accounts_network_fee_key ON accounts (network_id) WHERE kind = 'network_fee';
CREATE UNIQUE INDEX accounts_platform_fee_key ON accounts (kind) WHERE kind = 'platform_fee';
CREATE INDEX accounts_village_idx ON accounts (village_code, kind);

-- Every owner gets its accounts when it comes to be, so money code never has to create them.
-- A user's wallet has one home village: the village of their first membership (its treasurer
-- tops it up and pays it out).
CREATE FUNCTION accounts_for_village() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO accounts (kind, village_code)
    VALUES ('escrow', NEW.code), ('village_revenue', NEW.code), ('cash', NEW.code);
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_for_village AFTER INSERT ON villages
    FOR EACH ROW EXECUTE FUNCTION accounts_for_village();

CREATE FUNCTION accounts_for_member() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO accounts (kind, village_code, user_id) VALUES ('user_wallet', NEW.village_code, NEW.user_id)
    ON CONFLICT (user_id) WHERE kind = 'user_wallet' DO NOTHING;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_for_member AFTER INSERT ON memberships
    FOR EACH ROW EXECUTE FUNCTION accounts_for_member();

CREATE FUNCTION accounts_for_shop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO accounts (kind, village_code, shop_id) VALUES ('shop_wallet', NEW.village_code, NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_for_shop AFTER INSERT ON shops
    FOR EACH ROW EXECUTE FUNCTION accounts_for_shop();

CREATE FUNCTION accounts_for_network() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO accounts (kind, network_id) VALUES ('network_fee', NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_for_network AFTER INSERT ON networks
    FOR EACH ROW EXECUTE FUNCTION accounts_for_network();

INSERT INTO accounts (kind) VALUES ('platform_fee');
INSERT INTO accounts (kind, village_code)
    SELECT k, code FROM villages, unnest(ARRAY['escrow', 'village_revenue', 'cash']) k;
INSERT INTO accounts (kind, network_id) SELECT 'network_fee', id FROM networks;
INSERT INTO accounts (kind, village_code, shop_id) SELECT 'shop_wallet', village_code, id FROM shops;
INSERT INTO accounts (kind, village_code, user_id)
    SELECT DISTINCT ON (user_id) 'user_wallet', village_code, user_id
      FROM memberships ORDER BY user_id, created_at, village_code;

-- Balances move only through postings; owners never change; accounts are never deleted.
CREATE FUNCTION accounts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER accounts_guard BEFORE UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_guard();

-- An order: one buyer, one seller shop. What settlement needs is snapshot here at checkout, so
-- later changes of fees or networks never rewrite history.
CREATE TABLE orders (
    id                 UUID PRIMARY KEY,
    checkout_id        UUID NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('placed', 'accepted', 'rejected', 'cancelled', 'expired',
                                                       'shipped', 'completed', 'disputed', 'refunded')),
    -- The person who placed it; with buyer_shop_id, on behalf of that shop (a B2B order).
    buyer_user_id      UUID NOT NULL REFERENCES users (id),
    buyer_shop_id      UUID REFERENCES shops (id),
    buyer_account_id   UUID NOT NULL REFERENCES accounts (id),
    buyer_village_code TEXT NOT NULL REFERENCES villages (code),
    shop_id            UUID NOT NULL REFERENCES shops (id),
    -- The seller's village (the tenant of the order).
    village_code       TEXT NOT NULL REFERENCES villages (code),
    escrow_account_id  UUID NOT NULL REFERENCES accounts (id),
    -- The network buyer and seller share, whose fee applies; NULL when they share none.
    network_id         UUID REFERENCES networks (id),
    network_fee_bps    INTEGER NOT NULL CHECK (network_fee_bps BETWEEN 0 AND 10000),
    village_share_bps  INTEGER NOT NULL CHECK (village_share_bps BETWEEN 0 AND 10000),
    platform_fee_bps   INTEGER NOT NULL CHECK (platform_fee_bps BETWEEN 0 AND 10000),
    delivery_method    TEXT NOT NULL CHECK (delivery_method IN ('pickup', 'delivery')),
    delivery_address   TEXT,
    delivery_fee_idr   BIGINT NOT NULL CHECK (delivery_fee_idr >= 0),
    items_total_idr    BIGINT NOT NULL CHECK (items_total_idr > 0),
    total_idr          BIGINT NOT NULL,
    note               TEXT,
    courier_name       TEXT,
    courier_phone      TEXT,
    tracking_note      TEXT,
    placed_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    shipped_at         TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (network_fee_bps + village_share_bps + platform_fee_bps <= 10000),
    CHECK (total_idr = items_total_idr + delivery_fee_idr)
);
CREATE INDEX orders_buyer_idx ON orders (buyer_user_id, id DESC);
CREATE INDEX orders_buyer_shop_idx ON orders (buyer_shop_id, id DESC) WHERE buyer_shop_id IS NOT NULL;
CREATE INDEX orders_shop_idx ON orders (shop_id, id DESC);
CREATE INDEX orders_village_idx ON orders (village_code, id DESC);
-- The timers' queues.
CREATE INDEX orders_expiry_idx ON orders (placed_at) WHERE status = 'placed';
CREATE INDEX orders_completion_idx ON orders (shipped_at) WHERE status = 'shipped';

CREATE TABLE order_lines (
    order_id       UUID NOT NULL REFERENCES orders (id),
    line_no        INTEGER NOT NULL,
    product_id     UUID NOT NULL REFERENCES products (id),
    name           TEXT NOT NULL,
    unit           TEXT NOT NULL,
    unit_price_idr BIGINT NOT NULL CHECK (unit_price_idr >= 1),
    quantity       INTEGER NOT NULL CHECK (quantity >= 1),
    line_total_idr BIGINT NOT NULL CHECK (line_total_idr = unit_price_idr * quantity),
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_product_idx ON order_lines (product_id);

-- Every change of an order's status. The machine has no cycles, so an order enters each
-- status at most once: the unique index makes a double transition impossible.
CREATE TABLE order_events (
    id          UUID PRIMARY KEY,
    order_id    UUID NOT NULL REFERENCES orders (id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    -- NULL for the system (timers).
    actor_id    UUID REFERENCES users (id),
    actor       TEXT NOT NULL CHECK (actor IN ('buyer', 'seller', 'seller_admin', 'system')),
    note        TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX order_events_once ON order_events (order_id, to_status);

CREATE TABLE ledger_transactions (
    id         UUID PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('topup', 'withdrawal', 'hold', 'settlement', 'refund')),
    order_id   UUID REFERENCES orders (id),
    -- Who did it; NULL for the system (timers).
    actor_id   UUID REFERENCES users (id),
    note       TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ledger_transactions_order_idx ON ledger_transactions (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE postings (
    id                UUID PRIMARY KEY,
    transaction_id    UUID NOT NULL REFERENCES ledger_transactions (id),
    account_id        UUID NOT NULL REFERENCES accounts (id),
    amount_idr        BIGINT NOT NULL CHECK (amount_idr <> 0),
    -- Set by the trigger below from the account it updates: the account's balance after this
    -- posting and the posting's number in the account.
    balance_after_idr BIGINT NOT NULL DEFAULT 0,
    entry_no          BIGINT NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX postings_account_entry_key ON postings (account_id, entry_no);
CREATE INDEX postings_transaction_idx ON postings (transaction_id);

CREATE FUNCTION postings_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET balance_idr = balance_idr + NEW.amount_idr, entry_count = entry_count + 1
     WHERE id = NEW.account_id
    RETURNING balance_idr, entry_count INTO NEW.balance_after_idr, NEW.entry_no;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'posting to unknown account %', NEW.account_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER postings_apply BEFORE INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION postings_apply();

CREATE FUNCTION postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT sum(amount_idr) FROM postings WHERE transaction_id = NEW.transaction_id) <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance', NEW.transaction_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'postings_balanced';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION postings_balanced();

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER order_events_append_only BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

