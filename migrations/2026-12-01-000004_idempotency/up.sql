-- Idempotency-Key (IETF httpapi draft): the response of a money request, remembered per caller
-- and key for at least 24 hours, so a retried request replays it instead of moving money twice.
-- Written in the same transaction as the request's effect: both are there, or neither.
--
-- No foreign key to users: rows are a short-lived cache of responses, swept after 24 h.
CREATE TABLE idempotency_keys (
    caller_id       UUID NOT NULL,
    key             TEXT NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 255),
    -- Route pattern of the operation, e.g. 'POST /wallets/{id}/topups'.
    operation       TEXT NOT NULL,
    -- SHA-256 of method, path and raw body: the same key with another request is refused (422).
    request_hash    BYTEA NOT NULL CHECK (octet_length(request_hash) = 32),
    response_status SMALLINT NOT NULL CHECK (response_status BETWEEN 200 AND 499),
    -- json, not jsonb: the text is kept as written, so a replay is the same document, key order
    -- included.
    response_body   JSON NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (caller_id, key)
);
-- The sweep deletes by age.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
