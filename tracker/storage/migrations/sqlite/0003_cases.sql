-- Watchlist, alerts (with the sightings that hit them and their status history).
CREATE TABLE watchlist (
    tag_id       TEXT NOT NULL,
    case_no      TEXT NOT NULL,
    reporter     TEXT,
    reported_at  INTEGER NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL CHECK (status IN ('active', 'recovered', 'withdrawn')),
    changed_at   INTEGER NOT NULL,
    PRIMARY KEY (tag_id, case_no)
);

CREATE TABLE alerts (
    alert_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('new', 'acknowledged', 'dispatched', 'closed')),
    tag_id      TEXT,
    reader_id   TEXT,
    gateway_id  TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX alerts_at ON alerts (at);
CREATE INDEX alerts_tag ON alerts (tag_id, at);

CREATE TABLE alert_sightings (
    alert_id    TEXT NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    gateway_id  TEXT NOT NULL,
    spool_id    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (alert_id, gateway_id, spool_id, seq)
);
CREATE INDEX alert_sightings_id ON alert_sightings (gateway_id, spool_id, seq);

CREATE TABLE alert_status_changes (
    id           INTEGER PRIMARY KEY,
    alert_id     TEXT NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    note         TEXT
);
CREATE INDEX alert_status_changes_alert ON alert_status_changes (alert_id, at);
