-- Staff members' Gmail OAuth tokens, for sending their manual invites as themselves.
-- A secret: only ciphertext is stored (AES-GCM, a key derived from PORCHLIGHT_SECRET_KEY, the
-- row's workspace and staff id bound in as associated data), and it is never in an event,
-- a log or a message. Disconnecting deletes the row.
CREATE TABLE IF NOT EXISTS staff_gmail_tokens (
    workspace    text        NOT NULL,
    staff_id     text        NOT NULL,
    sealed       bytea       NOT NULL,  -- version byte, nonce, ciphertext of {"access_token", "refresh_token"}
    expires_at   timestamptz,           -- the access token's, as the staff member's client said; not secret
    connected_by text        NOT NULL,  -- the staff member who connected it (themselves, or an admin)
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace, staff_id)
);
