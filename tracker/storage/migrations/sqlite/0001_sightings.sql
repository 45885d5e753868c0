-- Sightings, as the hypertable of the PostgreSQL backend holds them. Times are integer
-- microseconds since the Unix epoch (UTC); antennas and flags are JSON arrays as text.
CREATE TABLE sightings (
    gateway_id    TEXT    NOT NULL,
    spool_id      TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('open', 'closed')),
    tag_id        TEXT    NOT NULL,
    tag_kind      TEXT    NOT NULL,
    tag_type      INTEGER,
    reader_id     TEXT    NOT NULL,
    antenna       INTEGER,
    antennas      TEXT    NOT NULL DEFAULT '[]',
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    reads         INTEGER NOT NULL,
    rssi_max_dbm  REAL,
    rssi_max_raw  INTEGER,
    flags         TEXT    NOT NULL DEFAULT '[]',
    reader_time   INTEGER,
    stored_at     INTEGER NOT NULL,
    -- The same key as the hypertable's, so both backends keep the same rows.
    UNIQUE (gateway_id, spool_id, seq, first_seen)
);
CREATE INDEX sightings_tag_time ON sightings (tag_id, first_seen);
CREATE INDEX sightings_reader_time ON sightings (reader_id, first_seen);
CREATE INDEX sightings_time ON sightings (first_seen);

CREATE TABLE evidence_sightings (
    gateway_id    TEXT    NOT NULL,
    spool_id      TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    tag_id        TEXT    NOT NULL,
    tag_kind      TEXT    NOT NULL,
    tag_type      INTEGER,
    reader_id     TEXT    NOT NULL,
    antenna       INTEGER,
    antennas      TEXT    NOT NULL DEFAULT '[]',
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    reads         INTEGER NOT NULL,
    rssi_max_dbm  REAL,
    rssi_max_raw  INTEGER,
    flags         TEXT    NOT NULL DEFAULT '[]',
    reader_time   INTEGER,
    stored_at     INTEGER NOT NULL,
    copied_at     INTEGER NOT NULL,
    UNIQUE (gateway_id, spool_id, seq, first_seen)
);
CREATE INDEX evidence_sightings_tag_time ON evidence_sightings (tag_id, first_seen);
