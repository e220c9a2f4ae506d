-- Identity hardening: login sessions as families with an absolute lifetime (the family row is
-- what rotation, logout and reuse revocation lock, so they serialize), platform-scoped sessions
-- (village NULL), one-time password reset codes, and BUMDes Bersama co-ownership by consent.

-- A login session: every refresh token of it belongs to its family. Revoking the family ends it.
CREATE TABLE refresh_families (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id),
    -- NULL: a platform admin's platform-scoped session.
    village_code TEXT REFERENCES villages (code),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Absolute lifetime: no refresh extends a session past it.
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX refresh_families_user_idx ON refresh_families (user_id, village_code);

INSERT INTO refresh_families (id, user_id, village_code, created_at, expires_at, revoked_at)
SELECT DISTINCT ON (family_id) family_id, user_id, village_code, created_at,
       created_at + interval '90 days',
       CASE WHEN bool_and(revoked_at IS NOT NULL) OVER (PARTITION BY family_id) THEN now() END
  FROM refresh_tokens
 ORDER BY family_id, created_at;

ALTER TABLE refresh_tokens DROP COLUMN village_code;
ALTER TABLE refresh_tokens
    ADD CONSTRAINT refresh_tokens_family_fkey FOREIGN KEY (family_id) REFERENCES refresh_families (id);

-- One-time password reset codes, issued in person by a village's admin or treasurer (no SMS).
-- Only the SHA-256 of the code is kept.
CREATE TABLE password_resets (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id),
    code_hash    BYTEA NOT NULL,
    issued_by    UUID NOT NULL REFERENCES users (id),
    village_code TEXT NOT NULL REFERENCES villages (code),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ,
    CONSTRAINT password_resets_code_key UNIQUE (code_hash)
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);

-- A partner village co-owns a BUMDes Bersama only once its admin (or a platform admin)
-- accepts; until then it is invited and the BUMDes is not listed under it.
ALTER TABLE bumdes_villages
    ADD COLUMN invited_by  UUID REFERENCES users (id),
    ADD COLUMN accepted_at TIMESTAMPTZ;
UPDATE bumdes_villages SET accepted_at = now();
