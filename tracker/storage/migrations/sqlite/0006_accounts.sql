-- Accounts of the people and systems that use the API (issue 10). No default account: the
-- first admin comes from `pak users add`. Secrets are never stored: passwords as argon2
-- hashes, API keys and session tokens as hex SHA-256 of the secret (256-bit random values,
-- so a fast hash is safe and a lookup is one primary-key probe).
CREATE TABLE users (
    name                 TEXT PRIMARY KEY,
    role                 TEXT NOT NULL
                         CHECK (role IN ('admin', 'officer', 'analyst', 'service')),
    disabled             INTEGER NOT NULL DEFAULT 0,
    password_hash        TEXT,
    created_at           INTEGER NOT NULL,
    password_changed_at  INTEGER
);

CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    owner       TEXT NOT NULL REFERENCES users (name),
    scopes      TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_owner ON api_keys (owner);

-- A session lives until expires_at, its user is disabled, or its user's role changes (role
-- is the role it was opened with; a lookup refuses a session whose role differs).
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users (name),
    role        TEXT NOT NULL,
    csrf_hash   TEXT NOT NULL,
    client      TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Failed sign-ins per subject ('user:NAME' or 'addr:ADDRESS') in the current window, shared
-- by every API instance.
CREATE TABLE login_failures (
    subject       TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL
);
