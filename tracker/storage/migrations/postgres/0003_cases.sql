-- Watchlist, alerts (with the sightings that hit them and their status history).
CREATE TABLE watchlist (
    tag_id       text NOT NULL,
    case_no      text NOT NULL,
    reporter     text,
    reported_at  timestamptz NOT NULL,
    note         text NOT NULL DEFAULT '',
    status       text NOT NULL CHECK (status IN ('active', 'recovered', 'withdrawn')),
    changed_at   timestamptz NOT NULL,
    PRIMARY KEY (tag_id, case_no)
);
CREATE INDEX watchlist_active ON watchlist (tag_id) WHERE status = 'active';

CREATE TABLE alerts (
    alert_id    text PRIMARY KEY,
    kind        text NOT NULL,
    at          timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    status      text NOT NULL CHECK (status IN ('new', 'acknowledged', 'dispatched', 'closed')),
    tag_id      text,
    reader_id   text,
    gateway_id  text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alerts_at ON alerts (at DESC);
CREATE INDEX alerts_open ON alerts (status) WHERE status <> 'closed';
CREATE INDEX alerts_tag ON alerts (tag_id, at DESC);

CREATE TABLE alert_sightings (
    alert_id    text NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    gateway_id  text NOT NULL,
    spool_id    text NOT NULL,
    seq         bigint NOT NULL,
    added_at    timestamptz NOT NULL,
    PRIMARY KEY (alert_id, gateway_id, spool_id, seq)
);
CREATE INDEX alert_sightings_id ON alert_sightings (gateway_id, spool_id, seq);

CREATE TABLE alert_status_changes (
    id           bigserial PRIMARY KEY,
    alert_id     text NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    note         text
);
CREATE INDEX alert_status_changes_alert ON alert_status_changes (alert_id, at);
