-- Identity and tenancy: memberships, refresh tokens, login rate limits, BUMDes, shops, audit log.

-- Roles of a user in one village.
CREATE TABLE memberships (
    user_id      UUID NOT NULL REFERENCES users (id),
    village_code TEXT NOT NULL REFERENCES villages (code),
    roles        TEXT[] NOT NULL CHECK (cardinality(roles) > 0 AND roles <@ ARRAY['admin', 'treasurer', 'member']::TEXT[]),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, village_code)
);
CREATE INDEX memberships_village_idx ON memberships (village_code, user_id);

-- Opaque refresh tokens, stored as SHA-256 hashes. Each login starts a family; every refresh
-- marks its token used and adds the next one. A used token presented again (after the grace)
-- revokes the whole family.
CREATE TABLE refresh_tokens (
    id           UUID PRIMARY KEY,
    family_id    UUID NOT NULL,
    user_id      UUID NOT NULL REFERENCES users (id),
    village_code TEXT NOT NULL REFERENCES villages (code),
    token_hash   BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    CONSTRAINT refresh_tokens_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- Fixed-window login counters, shared by every API process.
CREATE TABLE login_attempts (
    bucket       TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    attempts     INTEGER NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- BUMDes (Badan Usaha Milik Desa): a village-owned enterprise. Kind `desa` belongs to one
-- village; `bersama` is shared by several (all listed in bumdes_villages, the lead included).
CREATE TABLE bumdes (
    id           UUID PRIMARY KEY,
    village_code TEXT NOT NULL REFERENCES villages (code),
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('desa', 'bersama')),
    legal_number TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX bumdes_village_idx ON bumdes (village_code);

CREATE TABLE bumdes_villages (
    bumdes_id    UUID NOT NULL REFERENCES bumdes (id),
    village_code TEXT NOT NULL REFERENCES villages (code),
    PRIMARY KEY (bumdes_id, village_code)
);

-- A business unit (unit usaha) of a BUMDes: a shop, a tourism site, a rice mill…
CREATE TABLE bumdes_units (
    id           UUID PRIMARY KEY,
    bumdes_id    UUID NOT NULL REFERENCES bumdes (id),
    village_code TEXT NOT NULL REFERENCES villages (code),
    name         TEXT NOT NULL,
    sector       TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX bumdes_units_bumdes_idx ON bumdes_units (bumdes_id);

-- A shop (lapak): the seller, in exactly one village.
CREATE TABLE shops (
    id                       UUID PRIMARY KEY,
    village_code             TEXT NOT NULL REFERENCES villages (code),
    name                     TEXT NOT NULL,
    description              TEXT NOT NULL DEFAULT '',
    kind                     TEXT NOT NULL CHECK (kind IN ('bumdes_unit', 'umkm', 'group')),
    bumdes_unit_id           UUID REFERENCES bumdes_units (id),
    status                   TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'rejected', 'suspended')),
    status_reason            TEXT,
    delivery_fee_village_idr BIGINT NOT NULL DEFAULT 0 CHECK (delivery_fee_village_idr BETWEEN 0 AND 10000000),
    delivery_fee_other_idr   BIGINT NOT NULL DEFAULT 0 CHECK (delivery_fee_other_idr BETWEEN 0 AND 10000000),
    pickup                   BOOLEAN NOT NULL DEFAULT TRUE,
    created_by               UUID NOT NULL REFERENCES users (id),
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX shops_village_idx ON shops (village_code, status, id);

CREATE TABLE shop_operators (
    shop_id  UUID NOT NULL REFERENCES shops (id),
    user_id  UUID NOT NULL REFERENCES users (id),
    added_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, user_id)
);
CREATE INDEX shop_operators_user_idx ON shop_operators (user_id);

-- Every administrative action: who, what, when, before and after. Append-only.
CREATE TABLE audit_log (
    id           UUID PRIMARY KEY,
    actor_id     UUID REFERENCES users (id),
    village_code TEXT,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    before       JSONB,
    after        JSONB,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_village_idx ON audit_log (village_code, id DESC);
