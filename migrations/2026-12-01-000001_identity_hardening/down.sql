ALTER TABLE bumdes_villages DROP COLUMN accepted_at, DROP COLUMN invited_by;
DROP TABLE password_resets;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_family_fkey;
ALTER TABLE refresh_tokens ADD COLUMN village_code TEXT REFERENCES villages (code);
UPDATE refresh_tokens t SET village_code = f.village_code FROM refresh_families f WHERE f.id = t.family_id;
-- Platform-scoped sessions did not exist before: end them.
DELETE FROM refresh_tokens WHERE village_code IS NULL;
ALTER TABLE refresh_tokens ALTER COLUMN village_code SET NOT NULL;
DROP TABLE refresh_families;
