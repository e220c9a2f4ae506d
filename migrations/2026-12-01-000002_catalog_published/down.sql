ALTER TABLE products DROP CONSTRAINT products_published_check;
DROP TRIGGER products_publish ON products;
DROP FUNCTION products_publish();
ALTER TABLE products DROP COLUMN published_at;
