DROP TABLE stock_adjustments;
DROP TRIGGER products_touch ON products;
DROP FUNCTION products_touch();
DROP TABLE products;
DROP TABLE categories;
