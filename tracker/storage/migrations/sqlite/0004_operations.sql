-- Dead letters, audit log, gateways.
CREATE TABLE dead_letters (
    id           INTEGER PRIMARY KEY,
    topic        TEXT NOT NULL,
    payload      BLOB NOT NULL,
    reason       TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '',
    received_at  INTEGER NOT NULL
);
CREATE INDEX dead_letters_received ON dead_letters (received_at);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    reason  TEXT NOT NULL,
    params  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE gateways (
    gateway_id  TEXT PRIMARY KEY,
    state       TEXT,
    state_at    INTEGER,
    health      TEXT,
    health_at   INTEGER
);
