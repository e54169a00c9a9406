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

-- Client sign-in (services/invite_service/signin/). None of this is in the event store:
-- the events record only that something happened (PasswordSet, SignedIn).

-- Sessions: an idle limit besides the absolute one, and a public id the host app checks
-- (the cookie value is never shown to it).
ALTER TABLE portal_sessions ADD COLUMN IF NOT EXISTS session_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX IF NOT EXISTS portal_sessions_session_id ON portal_sessions (session_id);

-- What a session check needs of an account, written in the transaction of the account's
-- events (a side row): checking a session reads this row instead of replaying the account.
CREATE TABLE IF NOT EXISTS portal_account_access (
    account_id    uuid        PRIMARY KEY,
    workspace     text        NOT NULL,
    email         text        NOT NULL,
    name          text,
    role          text        NOT NULL,
    resources     jsonb       NOT NULL,
    status        text        NOT NULL,
    access_epoch  integer     NOT NULL,
    version       integer     NOT NULL
);

-- argon2id password hashes, one per account; deletable, never in an event, log or message.
CREATE TABLE IF NOT EXISTS portal_credentials (
    account_id     uuid        PRIMARY KEY,
    password_hash  text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One-time hand-off codes to the host portal (60 s, single use), stored as their SHA-256.
CREATE TABLE IF NOT EXISTS portal_handoffs (
    code_hash     bytea       PRIMARY KEY,
    workspace     text        NOT NULL,
    session_id    uuid        NOT NULL,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);

-- Rate-limit windows shared by every API replica: one row per (limit, key), the window
-- starting at its first hit. Keys are hashes (an email is not kept in clear here).
CREATE TABLE IF NOT EXISTS portal_rate_limits (
    bucket        text        NOT NULL,
    key           bytea       NOT NULL,
    window_start  timestamptz NOT NULL,
    hits          integer     NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX IF NOT EXISTS portal_rate_limits_window ON portal_rate_limits (window_start);
