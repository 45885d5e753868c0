-- Dead letters, audit log, gateways.
CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    topic        text NOT NULL,
    payload      bytea NOT NULL,
    reason       text NOT NULL,
    detail       text NOT NULL DEFAULT '',
    received_at  timestamptz NOT NULL
);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);

CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    reason  text NOT NULL,
    params  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE gateways (
    gateway_id  text PRIMARY KEY,
    state       text,
    state_at    timestamptz,
    health      jsonb,
    health_at   timestamptz
);
