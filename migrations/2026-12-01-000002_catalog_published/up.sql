-- A product is published when it first becomes active or inactive (visible to buyers). Public
-- reads (catalogue, detail, sync) filter on published_at, so a draft, and a draft that was
-- deleted (archived) without ever being published, can never leak.
ALTER TABLE products ADD COLUMN published_at TIMESTAMPTZ;

-- Existing rows: active and inactive ones are published. An archived one only if the archive
-- audit record shows it was not a draft then (without that evidence it stays private).
UPDATE products SET published_at = created_at WHERE status IN ('active', 'inactive');
UPDATE products p SET published_at = p.created_at
  FROM audit_log a
 WHERE p.status = 'archived'
   AND a.action = 'product.archive' AND a.entity_type = 'product' AND a.entity_id = p.id::text
   AND a.before ->> 'status' IS DISTINCT FROM 'draft';

-- Set by the database, whatever the code does: once published, always published (it is on
-- phones), and a product becomes published by leaving draft for a public status.
CREATE FUNCTION products_publish() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        NEW.published_at := COALESCE(OLD.published_at, NEW.published_at);
    END IF;
    IF NEW.published_at IS NULL AND NEW.status IN ('active', 'inactive') THEN
        NEW.published_at := clock_timestamp();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER products_publish BEFORE INSERT OR UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION products_publish();

-- Active and inactive rows are published; drafts are not (so a published product can never
-- return to draft).
ALTER TABLE products ADD CONSTRAINT products_published_check CHECK (
    CASE status
        WHEN 'draft' THEN published_at IS NULL
        WHEN 'archived' THEN TRUE
        ELSE published_at IS NOT NULL
    END
);
