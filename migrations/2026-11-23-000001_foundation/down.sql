DROP TABLE network_villages;
DROP TABLE networks;
DROP TABLE villages;
DROP TABLE users;
DROP TABLE regions;
DROP EXTENSION IF EXISTS pg_trgm;
