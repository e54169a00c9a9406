-- relay_positions (the relay's stored position) is services/common/schema.sql's: the log follower owns it.

-- Portal sessions: server side, so they can be ended at once. Only a hash of the cookie
-- value is stored; the cookie itself is never written anywhere.
CREATE TABLE IF NOT EXISTS portal_sessions (
    session_hash  bytea       PRIMARY KEY,
    workspace     text        NOT NULL,
    account_id    uuid        NOT NULL,
    access_epoch  integer     NOT NULL,
    method        text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz
);
CREATE INDEX IF NOT EXISTS portal_sessions_account ON portal_sessions (account_id);

-- Idempotency-Key answers (api/idempotency.py), kept 24 hours and deleted lazily. A row
-- without a status is a request still running. Scoped per workspace.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    workspace     text        NOT NULL,
    key           text        NOT NULL,
    fingerprint   bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    status        smallint,
    content_type  text,
    body          bytea,
    PRIMARY KEY (workspace, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);
