-- The notifier's delivery ledger: one row per (access event, channel).
-- The primary key is what makes a redelivered or re-published event send nothing twice:
-- the consumer locks this row before sending and skips it once it says 'sent'.
CREATE TABLE IF NOT EXISTS notifier_deliveries (
    event_id    uuid        NOT NULL,
    channel     text        NOT NULL,
    -- uuid5(event_id, channel): the same on every retry, so downstream dedupes outcomes on it.
    delivery_id uuid        NOT NULL UNIQUE,
    account_id  uuid        NOT NULL,
    workspace   text        NOT NULL,
    provider    text        NOT NULL,
    -- 'pending' exists only inside the transaction that sends; committed rows have an outcome.
    status      text        NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempt     integer     NOT NULL DEFAULT 0,
    error       text,
    message_id  text,
    sent_at     timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, channel)
);

CREATE INDEX IF NOT EXISTS notifier_deliveries_account ON notifier_deliveries (account_id);
