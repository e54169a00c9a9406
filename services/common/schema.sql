-- Liveness of the background processes, for /readyz: each writes a beat every few seconds.
CREATE TABLE IF NOT EXISTS process_heartbeats (
    process   text        NOT NULL,
    instance  text        NOT NULL,
    beat_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (process, instance)
);

-- How far each follower of the notification log got (services/common/log_follower.py),
-- one row per follower name: the relay, and any later reader of the log. Named when the
-- relay was its only user. Written only after the follower's page was dealt with (for the
-- relay: after the broker acknowledged everything up to `position`).
CREATE TABLE IF NOT EXISTS relay_positions (
    relay       text        PRIMARY KEY,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- What the broker acknowledged to a relay, per partition: a later ack at or below
-- `acked_offset` (the highest), or a partition that ends at or below `last_page_offset`
-- (the first offset of the relay's latest page there), means the broker lost what it had
-- acknowledged (broker_resets.py).
CREATE TABLE IF NOT EXISTS broker_acked_offsets (
    relay             text    NOT NULL,
    topic             text    NOT NULL,
    partition         integer NOT NULL,
    acked_offset      bigint  NOT NULL,
    last_page_offset  bigint  NOT NULL,
    PRIMARY KEY (relay, topic, partition)
);

-- Each time a relay found the broker had lost acknowledged events and re-published the log.
-- Consumers watch `epoch` to re-read from the beginning; /readyz shows the latest one.
CREATE TABLE IF NOT EXISTS broker_resets (
    epoch              bigserial   PRIMARY KEY,
    relay              text        NOT NULL,
    topic              text        NOT NULL,
    reason             text        NOT NULL,
    -- What the relay had published before the loss: caught up again once its position reaches it.
    republish_through  bigint      NOT NULL,
    detected_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS broker_resets_topic ON broker_resets (topic, epoch);

-- The tamper-evidence chain over the notification log (services/common/audit_chain.py): one
-- row per stored event, `hash` = SHA-256 over the previous row's hash and the event's
-- position, originator id, version, topic and stored state bytes. Written by the chain's log
-- follower (never by the request path); `porchlight audit verify` recomputes it from the
-- event store. `state_digest` (SHA-256 of the state alone) lets verify tell an event moved
-- to another position from one altered in place.
CREATE TABLE IF NOT EXISTS audit_chain (
    position      bigint      PRIMARY KEY,
    hash          bytea       NOT NULL,
    prev          bytea       NOT NULL,
    state_digest  bytea       NOT NULL,
    chained_at    timestamptz NOT NULL DEFAULT now()
);
