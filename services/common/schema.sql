-- Liveness of the background processes, for /readyz: each writes a beat every few seconds.
CREATE TABLE IF NOT EXISTS process_heartbeats (
    process   text        NOT NULL,
    instance  text        NOT NULL,
    beat_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (process, instance)
);
