-- stepup-sqlx schema version 1 (SQLite). Times are Unix seconds, except
-- stepup_state.expires_at (Unix milliseconds). Subjects are the
-- application's user ids.

-- The assurance epoch of each user: bumped when a factor changes, so every
-- outstanding assurance token ends.
CREATE TABLE stepup_epochs (
    subject TEXT PRIMARY KEY NOT NULL,
    epoch INTEGER NOT NULL
);

-- The TOTP secret of each user, sealed (XChaCha20-Poly1305 under the key
-- key_id; bound to the subject and this column).
CREATE TABLE stepup_totp (
    subject TEXT PRIMARY KEY NOT NULL,
    key_id INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Unused recovery codes: only keyed digests (HMAC-SHA256 under a subkey of
-- key_id, over the subject and the code's digest). A used code's row is gone.
CREATE TABLE stepup_recovery_codes (
    subject TEXT NOT NULL,
    digest BLOB NOT NULL,
    key_id INTEGER NOT NULL,
    PRIMARY KEY (subject, digest)
);

-- Where one-time codes go: the registered e-mail address or phone number.
CREATE TABLE stepup_code_destinations (
    subject TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    address TEXT NOT NULL,
    PRIMARY KEY (subject, channel)
);

-- Passkeys: the credential record sealed (bound to the subject and the
-- credential id); the credential id unique across all users; the signature
-- counter in the clear, so an update never moves it back.
CREATE TABLE stepup_passkeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    credential_id BLOB NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    name TEXT NOT NULL,
    counter INTEGER NOT NULL,
    key_id INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX stepup_passkeys_subject ON stepup_passkeys (subject, id);

-- The sealing keys this database has seen, by id, with a check value (an
-- HMAC under a subkey): a store opened with another key under a known id
-- is refused at start.
CREATE TABLE stepup_sealing_keys (
    key_id INTEGER PRIMARY KEY NOT NULL,
    check_value BLOB NOT NULL,
    first_used_at INTEGER NOT NULL
);

-- Short-lived state (SqlStateStore): TOTP steps (kind 1, number), counters
-- (kind 2, number), values (kind 3, value). Keys are the engine's keyed
-- names; expired rows are ignored and swept.
CREATE TABLE stepup_state (
    state_key TEXT PRIMARY KEY NOT NULL,
    kind INTEGER NOT NULL,
    number INTEGER,
    value BLOB,
    expires_at INTEGER NOT NULL
);
CREATE INDEX stepup_state_expires_at ON stepup_state (expires_at);
