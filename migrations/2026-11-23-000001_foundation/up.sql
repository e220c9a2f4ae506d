-- Foundation: official regions, users, onboarded villages and their networks.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Every province, regency/city, district and village with its Kemendagri code (`34.02.15.2004`).
CREATE TABLE regions (
    code        TEXT PRIMARY KEY,
    parent_code TEXT REFERENCES regions (code),
    level       SMALLINT NOT NULL CHECK (level BETWEEN 1 AND 4),
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    postal_code TEXT,
    CHECK ((level = 1) = (parent_code IS NULL))
);
CREATE INDEX regions_parent_code_idx ON regions (parent_code, code);
CREATE INDEX regions_level_code_idx ON regions (level, code);
CREATE INDEX regions_name_trgm_idx ON regions USING gin (lower(name) gin_trgm_ops);

CREATE TABLE users (
    id                UUID PRIMARY KEY,
    phone             TEXT NOT NULL,
    name              TEXT NOT NULL,
    password_hash     TEXT NOT NULL,
    is_platform_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_phone_key UNIQUE (phone)
);

-- A village (desa) onboarded onto the platform. Its code is a level-4 region.
CREATE TABLE villages (
    code              TEXT PRIMARY KEY REFERENCES regions (code),
    name              TEXT NOT NULL,
    idm_status        TEXT CHECK (idm_status IN ('sangat_tertinggal', 'tertinggal', 'berkembang', 'maju', 'mandiri')),
    -- Share of each completed sale that goes to the village revenue account (PADes), basis points.
    village_share_bps INTEGER NOT NULL DEFAULT 0 CHECK (village_share_bps BETWEEN 0 AND 10000),
    onboarded_by      UUID REFERENCES users (id),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Villages that trade together; money moving between members counts as local.
CREATE TABLE networks (
    id             UUID PRIMARY KEY,
    name           TEXT NOT NULL,
    -- Fee the network takes from each completed sale between its members, basis points.
    network_fee_bps INTEGER NOT NULL DEFAULT 0 CHECK (network_fee_bps BETWEEN 0 AND 10000),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT networks_name_key UNIQUE (name)
);

CREATE TABLE network_villages (
    network_id   UUID NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
    village_code TEXT NOT NULL REFERENCES villages (code),
    joined_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (network_id, village_code)
);
CREATE INDEX network_villages_village_idx ON network_villages (village_code);
