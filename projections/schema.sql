-- Read models built by the projector. Disposable: drop them and replay the event store
-- to rebuild (ARCHITECTURE.md rule 3). Timestamps come from the events, never now(), so a
-- rebuild produces the same rows.

-- What each projection has applied: the update and this row commit in one transaction,
-- so a redelivered event finds its row here and changes nothing (rule 2).
-- For access events: (aggregate_id, aggregate_version); for delivery outcomes:
-- (delivery_id, attempt).
CREATE TABLE IF NOT EXISTS projection_applied (
    projection    text        NOT NULL,
    aggregate_id  uuid        NOT NULL,
    version       int         NOT NULL,
    event_id      uuid,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, aggregate_id, version)
);
-- The event-store position of an access event (null for delivery outcomes, which have
-- none): a read with `min_position` waits until the event at that position is applied.
ALTER TABLE projection_applied ADD COLUMN IF NOT EXISTS position bigint;
CREATE INDEX IF NOT EXISTS projection_applied_position
    ON projection_applied (projection, position) WHERE position IS NOT NULL;

-- The highest event-store position each projection has applied, updated in the same
-- transaction as the rows: the projection's lag is the event store's head minus this.
CREATE TABLE IF NOT EXISTS projection_positions (
    projection  text        PRIMARY KEY,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The staff status list: one row per portal account.
CREATE TABLE IF NOT EXISTS account_status (
    account_id           uuid        PRIMARY KEY,
    workspace            text        NOT NULL,
    email                text,
    name                 text,
    role                 text,
    company              text,
    phone                text,
    contact_id           text,
    resources            jsonb       NOT NULL DEFAULT '[]'::jsonb,
    -- pending / active / disabled; `not_invited` is reserved for contacts known from shares.
    status               text        NOT NULL DEFAULT 'pending',
    invitation_id        uuid,
    -- The list's sort key (with account_id): the first invite, from whichever of
    -- AccountCreated / InviteSent was applied first.
    invited_at           timestamptz NOT NULL,
    invited_by           text,
    last_invite_sent_at  timestamptz,
    expires_at           timestamptz,
    activated_at         timestamptz,
    disabled_at          timestamptz,
    disabled_by          text,
    last_sign_in_at      timestamptz,
    sign_ins             int         NOT NULL DEFAULT 0,
    last_delivery_status text,
    last_delivery_at     timestamptz,
    updated_at           timestamptz NOT NULL
);

-- Why staff disabled the account (as typed with `disable`), shown beside who and when.
ALTER TABLE account_status ADD COLUMN IF NOT EXISTS disabled_reason text;

-- The list's keyset pagination: one index per sort key (invited_at, name, last sign-in),
-- each ending in account_id, the tie-breaker; read backwards for the other direction.
-- `name` sorts case-insensitively in code-point order (the same on every server, whatever its
-- locale), a nameless contact by email; never signed in sorts as
-- -infinity (last, newest first). queries.py uses these very expressions.
CREATE INDEX IF NOT EXISTS account_status_ws_invited
    ON account_status (workspace, invited_at DESC, account_id DESC);
CREATE INDEX IF NOT EXISTS account_status_ws_status_invited
    ON account_status (workspace, status, invited_at DESC, account_id DESC);
CREATE INDEX IF NOT EXISTS account_status_ws_name
    ON account_status (workspace, (lower(COALESCE(name, email, '')) COLLATE "C"), account_id);
CREATE INDEX IF NOT EXISTS account_status_ws_sign_in
    ON account_status (workspace, COALESCE(last_sign_in_at, '-infinity'::timestamptz), account_id);
-- The same within one state (the common "active, by name" and "pending, by invite" views).
CREATE INDEX IF NOT EXISTS account_status_ws_status_name
    ON account_status (workspace, status, (lower(COALESCE(name, email, '')) COLLATE "C"), account_id);
CREATE INDEX IF NOT EXISTS account_status_ws_status_sign_in
    ON account_status (workspace, status, COALESCE(last_sign_in_at, '-infinity'::timestamptz), account_id);
-- Pending accounts by link expiry: `link_expired` and its count, without visiting the rest.
CREATE INDEX IF NOT EXISTS account_status_ws_pending_expiry
    ON account_status (workspace, expires_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS account_status_ws_email
    ON account_status (workspace, lower(email));
-- `resources @> '[{"type": ..., "id": ...}]'` for "who can see trip X".
CREATE INDEX IF NOT EXISTS account_status_resources
    ON account_status USING gin (resources jsonb_path_ops);
-- Free text (`q`): part of the name, email or company, through trigrams. The fields are
-- joined by a unit separator, which no search text contains, so a match never spans two.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS account_status_search
    ON account_status USING gin (
        (COALESCE(name, '') || E'\x1f' || COALESCE(email, '') || E'\x1f' || COALESCE(company, '')) gin_trgm_ops
    );

-- Every delivery attempt the notifier reported, per account.
CREATE TABLE IF NOT EXISTS account_deliveries (
    delivery_id  uuid        NOT NULL,
    attempt      int         NOT NULL,
    account_id   uuid        NOT NULL,
    workspace    text        NOT NULL,
    event_id     uuid        NOT NULL,
    channel      text        NOT NULL,
    provider     text        NOT NULL,
    status       text        NOT NULL,
    error        text,
    at           timestamptz NOT NULL,
    -- A retried delivery keeps its id and reports a higher attempt: keep each attempt.
    PRIMARY KEY (delivery_id, attempt)
);

CREATE INDEX IF NOT EXISTS account_deliveries_account_at
    ON account_deliveries (account_id, at DESC);
-- Why email to the account's address is held (suppression list), as the outcome reported it.
ALTER TABLE account_deliveries ADD COLUMN IF NOT EXISTS held text;
-- 'team' for the team's notices about the account (a failed delivery), listed beside its own.
ALTER TABLE account_deliveries ADD COLUMN IF NOT EXISTS audience text NOT NULL DEFAULT 'client';

-- The travelers of each trip, as seen in upstream share events (projections/travelers.py);
-- their portal state comes from account_status through account_id (null without an email).
CREATE TABLE IF NOT EXISTS trip_travelers (
    workspace      text        NOT NULL,
    trip_id        text        NOT NULL,
    traveler_key   text        NOT NULL,  -- account:<id>, else contact:<id>, else name:<name>
    first_seen_at  timestamptz NOT NULL,
    ord            int         NOT NULL,  -- place in the share that first named them
    contact_id     text,
    name           text,
    email          text,
    phone          text,
    is_primary     boolean     NOT NULL DEFAULT false,
    account_id     uuid,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (workspace, trip_id, traveler_key)
);

-- The access tab's recent login activity (sign-ins and failed attempts, newest first, the last 10).
ALTER TABLE account_status ADD COLUMN IF NOT EXISTS recent_sign_ins jsonb NOT NULL DEFAULT '[]'::jsonb;
