-- The notifier's delivery ledger: one row per message an access event causes (its "slot":
-- the client's email, the client's SMS, a team notice). The delivery id, uuid5 of
-- (event id, slot), is what makes a redelivered or re-published event send nothing twice.
CREATE TABLE IF NOT EXISTS notifier_deliveries (
    event_id    uuid        NOT NULL,
    channel     text        NOT NULL,
    -- uuid5(event_id, slot): the same on every retry, so downstream dedupes outcomes on it.
    delivery_id uuid        NOT NULL UNIQUE,
    account_id  uuid        NOT NULL,
    workspace   text        NOT NULL,
    provider    text        NOT NULL,
    status      text        NOT NULL,
    attempt     integer     NOT NULL DEFAULT 0,
    error       text,
    message_id  text,
    sent_at     timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, channel)
);

CREATE INDEX IF NOT EXISTS notifier_deliveries_account ON notifier_deliveries (account_id);

-- Leases and retries (no transaction is held across a provider call). A row is claimed
-- ('sending', lease_until, lease_owner) in a short transaction, the message is sent outside
-- any transaction, and the outcome is recorded in another. A crashed notifier's lease runs
-- out and the retry loop sends the row again; a transient failure sets next_attempt_at.
ALTER TABLE notifier_deliveries ADD COLUMN IF NOT EXISTS slot text;
ALTER TABLE notifier_deliveries ADD COLUMN IF NOT EXISTS recipient text;
ALTER TABLE notifier_deliveries ADD COLUMN IF NOT EXISTS lease_until timestamptz;
ALTER TABLE notifier_deliveries ADD COLUMN IF NOT EXISTS lease_owner text;
ALTER TABLE notifier_deliveries ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz;
-- What to send again: the event's envelope (never a link or code: those are derived from its
-- nonce with a key only the processes hold), or for a team notice what it reports.
ALTER TABLE notifier_deliveries ADD COLUMN IF NOT EXISTS envelope jsonb;
-- Outbox: an outcome recorded but not yet on the deliveries topic (a crash in between, or a
-- webhook recorded by the API, which has no producer). The retry loop publishes these.
ALTER TABLE notifier_deliveries ADD COLUMN IF NOT EXISTS published boolean NOT NULL DEFAULT true;
-- Why the address is held from email, when this delivery found it suppressed or put it there.
ALTER TABLE notifier_deliveries ADD COLUMN IF NOT EXISTS held text;
UPDATE notifier_deliveries SET slot = channel WHERE slot IS NULL;
-- Ledgers of older versions keyed (event_id, channel); one event now sends several messages
-- on one channel (an auto-invite's email and the team's notice), so the delivery id is the key.
ALTER TABLE notifier_deliveries DROP CONSTRAINT IF EXISTS notifier_deliveries_pkey;
ALTER TABLE notifier_deliveries DROP CONSTRAINT IF EXISTS notifier_deliveries_status_check;
ALTER TABLE notifier_deliveries ADD CONSTRAINT notifier_deliveries_status_check CHECK (status IN (
    'sending', 'retrying', 'sent', 'failed', 'suppressed', 'abandoned', 'delivered', 'bounced'
)) NOT VALID;
CREATE INDEX IF NOT EXISTS notifier_deliveries_due ON notifier_deliveries (next_attempt_at)
    WHERE status IN ('retrying', 'sending');
CREATE INDEX IF NOT EXISTS notifier_deliveries_unpublished ON notifier_deliveries (updated_at)
    WHERE NOT published;
CREATE INDEX IF NOT EXISTS notifier_deliveries_message_id ON notifier_deliveries (message_id);

-- Addresses not to email again: Postmark reported them inactive or hard-bounced. A staff
-- resend to the address clears its row (the resend is the explicit "try again").
CREATE TABLE IF NOT EXISTS notifier_suppressions (
    workspace   text        NOT NULL,
    address     text        NOT NULL,  -- lower-case
    reason      text        NOT NULL,
    delivery_id uuid,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace, address)
);

-- Each workspace's team address, from WorkspaceCreated and WorkspaceSettingsChanged: for the
-- team notices of events that carry no sender (AccountActivated) and of failed deliveries.
CREATE TABLE IF NOT EXISTS notifier_workspaces (
    workspace         text        PRIMARY KEY,
    team_notify_email text,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
