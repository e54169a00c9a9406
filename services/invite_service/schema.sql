-- How far the relay has published the notification log, per relay name.
-- Written only after the broker acknowledged everything up to `position`.
CREATE TABLE IF NOT EXISTS relay_positions (
    relay       text        PRIMARY KEY,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

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
