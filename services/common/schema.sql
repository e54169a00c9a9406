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
