-- A product's opening stock, kept so `pasar ledger verify` can prove no unit was created or
-- lost: stock = opening + Σ stock adjustments − units in orders that hold or sold them
-- (placed, accepted, shipped, disputed, completed). Set once, at insert, by the trigger.
ALTER TABLE products ADD COLUMN opening_stock INTEGER;
-- Existing products: what makes the equation true today (the history has no other record).
UPDATE products p SET opening_stock = p.stock
    - COALESCE((SELECT sum(a.delta) FROM stock_adjustments a WHERE a.product_id = p.id), 0)
    + COALESCE((SELECT sum(l.quantity) FROM order_lines l JOIN orders o ON o.id = l.order_id
                 WHERE l.product_id = p.id
                   AND o.status IN ('placed', 'accepted', 'shipped', 'disputed', 'completed')), 0);
ALTER TABLE products ALTER COLUMN opening_stock SET NOT NULL;

CREATE FUNCTION products_opening_stock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.opening_stock := NEW.stock;
    ELSE
        NEW.opening_stock := OLD.opening_stock;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER products_opening_stock BEFORE INSERT OR UPDATE OF opening_stock ON products
    FOR EACH ROW EXECUTE FUNCTION products_opening_stock();
