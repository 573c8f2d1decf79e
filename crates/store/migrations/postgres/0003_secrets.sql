-- Secrets of a service in an environment, encrypted by Slipway before they reach the database
-- (XChaCha20-Poly1305; the key never enters the database). `key_id` names the key that encrypted a
-- value, so a key rotation can tell what it has re-encrypted.
CREATE TABLE secrets (
    service     TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    environment TEXT NOT NULL REFERENCES environments (name),
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    key_id      TEXT NOT NULL,
    ciphertext  BYTEA NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (service, environment, name)
);
