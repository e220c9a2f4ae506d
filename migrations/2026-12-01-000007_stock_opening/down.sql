DROP TRIGGER products_opening_stock ON products;
DROP FUNCTION products_opening_stock();
ALTER TABLE products DROP COLUMN opening_stock;
