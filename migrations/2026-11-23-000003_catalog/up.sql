-- Catalog: categories, products, stock adjustments.

CREATE TABLE categories (
    slug     TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    position INTEGER NOT NULL
);
INSERT INTO categories (slug, name, position) VALUES
    ('sembako', 'Sembako', 1),
    ('sayur-buah', 'Sayur & Buah', 2),
    ('beras-palawija', 'Beras & Palawija', 3),
    ('kopi-teh', 'Kopi & Teh', 4),
    ('perikanan', 'Perikanan', 5),
    ('peternakan', 'Peternakan', 6),
    ('olahan-pangan', 'Olahan Pangan', 7),
    ('jamu-herbal', 'Jamu & Herbal', 8),
    ('kerajinan', 'Kerajinan', 9),
    ('batik-tenun', 'Batik & Tenun', 10),
    ('pertanian', 'Saprotan & Bibit', 11),
    ('wisata', 'Wisata Desa', 12),
    ('jasa', 'Jasa', 13),
    ('lainnya', 'Lainnya', 14);

CREATE TABLE products (
    id              UUID PRIMARY KEY,
    shop_id         UUID NOT NULL REFERENCES shops (id),
    -- The owning village, kept on the row: filters and the local ranking use its code prefix,
    -- and a distributed setup can shard by it.
    village_code    TEXT NOT NULL REFERENCES villages (code),
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    category        TEXT NOT NULL REFERENCES categories (slug),
    unit            TEXT NOT NULL CHECK (char_length(unit) BETWEEN 1 AND 20),
    price_idr       BIGINT NOT NULL CHECK (price_idr BETWEEN 100 AND 2000000000),
    discount_kind   TEXT CHECK (discount_kind IN ('percent', 'amount')),
    discount_value  BIGINT,
    final_price_idr BIGINT NOT NULL CHECK (final_price_idr BETWEEN 1 AND price_idr),
    stock           INTEGER NOT NULL CHECK (stock >= 0),
    weight_grams    INTEGER CHECK (weight_grams BETWEEN 1 AND 1000000),
    photo_urls      TEXT[] NOT NULL DEFAULT '{}' CHECK (cardinality(photo_urls) <= 5),
    certifications  TEXT[] NOT NULL DEFAULT '{}',
    flagship        BOOLEAN NOT NULL DEFAULT FALSE,
    -- draft (private) → active ⇄ inactive; any → archived (deleting archives).
    status          TEXT NOT NULL CHECK (status IN ('draft', 'active', 'inactive', 'archived')),
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    search          TSVECTOR GENERATED ALWAYS AS (
                        setweight(to_tsvector('indonesian', name), 'A') ||
                        setweight(to_tsvector('indonesian', description), 'B')
                    ) STORED,
    CHECK ((discount_kind IS NULL) = (discount_value IS NULL))
);
CREATE INDEX products_search_idx ON products USING gin (search);
CREATE INDEX products_name_trgm_idx ON products USING gin (lower(name) gin_trgm_ops);
CREATE INDEX products_updated_idx ON products (updated_at, id);
CREATE INDEX products_village_idx ON products (village_code text_pattern_ops, id);
CREATE INDEX products_shop_idx ON products (shop_id, id);
CREATE INDEX products_category_idx ON products (category, id);
CREATE INDEX products_price_idx ON products (final_price_idr, id);

-- Offline phones sync by updated_at. The writing transaction takes its xid before stamping the
-- row with the clock, so "every transaction with an xid started after T" (pg_stat_activity)
-- proves no row older than T can still appear: see catalog::sync_watermark.
CREATE FUNCTION products_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_current_xact_id();
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END
$$;
CREATE TRIGGER products_touch BEFORE INSERT OR UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION products_touch();

-- Stock changes other than orders, with the reason. Append-only.
CREATE TABLE stock_adjustments (
    id          UUID PRIMARY KEY,
    product_id  UUID NOT NULL REFERENCES products (id),
    delta       INTEGER NOT NULL CHECK (delta <> 0),
    stock_after INTEGER NOT NULL CHECK (stock_after >= 0),
    reason      TEXT NOT NULL,
    actor_id    UUID NOT NULL REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stock_adjustments_product_idx ON stock_adjustments (product_id, id DESC);
